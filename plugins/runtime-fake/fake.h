/* plugins/runtime-fake/fake.h — what the hollow runtime's files share. */
#ifndef KUBUS_RUNTIME_FAKE_H
#define KUBUS_RUNTIME_FAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <kubus/kubus.h>
#include <kubus/runtime.h>
#include <kubus/strmap.h>

/* How containers of one image behave. */
struct fake_behave {
	char *image;       /* name without tag or digest, e.g. "fail" */
	int64_t exit_code; /* when it exits on its own */
	int64_t run_ms;    /* runs this long, then exits; < 0: until stopped */
	bool ignore_term;  /* stop waits the whole timeout, then kills (137) */
	bool missing;      /* not in the image store */
	char *log;         /* lines written to the log at start ("" none) */
};

/* The records sit on lists with `pprev` (the address of whatever points
 * at the record: the head or the previous one's next), so that one found
 * through an index leaves its lists without a walk. */
struct fake_sandbox {
	char id[KB_RT_ID_MAX];
	char ip[KB_RT_IP_MAX];
	char uid[KB_RT_ID_MAX], ns[KB_RT_ID_MAX], name[KB_RT_ID_MAX];
	struct fake_ctr *ctrs; /* its containers (fake_ctr.sb_next) */
	struct fake_sandbox *next, **pprev;
};

struct fake_ctr {
	char id[KB_RT_ID_MAX];
	char sandbox[KB_RT_ID_MAX];
	struct fake_sandbox *sb; /* the one of id `sandbox` */
	char *name, *image, *log_path;
	char pod_uid[KB_RT_ID_MAX];
	unsigned attempt;
	bool init;
	const struct fake_behave *b;
	int state; /* enum kb_rt_state, before lazy exit */
	int exit_code;
	char reason[KB_RT_REASON_MAX];
	int64_t created_ms, started_ms, finished_ms;
	struct fake_ctr *next, **pprev;       /* fake.ctrs */
	struct fake_ctr *sb_next, **sb_pprev; /* its sandbox's ctrs */
};

/* Log lines held for one log file until the kubelet reads it (or drops
 * it with its pod, never written). */
struct fake_log {
	char *path;
	char *text;
	size_t len;
	struct fake_log *next, **pprev;
};

/* Held log text past which everything held is written out. */
#define FAKE_LOG_HELD_MAX (64u << 10)

struct fake {
	kb_ctx *ctx;
	pthread_mutex_t mu;
	struct fake_behave *behave; /* configured, then built-in */
	size_t nbehave;
	struct fake_behave dflt; /* any other image: runs until stopped */
	int64_t start_delay_ms;
	char *ip_prefix; /* "10.88": pods get 10.88.x.y */
	char *version;
	uint64_t next_id, next_ip;
	/* Newest first (the order the lists answer in), and by id: a
	 * hollow node's runtime looked each one up by walking them. */
	struct fake_sandbox *sandboxes;
	struct fake_ctr *ctrs;
	struct kb_strmap sandbox_index, ctr_index;
	pthread_mutex_t log_mu; /* logs, log_bytes; held while writing them */
	struct fake_log *logs;
	struct kb_strmap log_index; /* path -> its fake_log in logs */
	size_t log_bytes;
};

/* behave.c */
int fake_behave_load(struct fake *f, const kb_conf *images);
const struct fake_behave *fake_behave_of(const struct fake *f,
    const char *image);
void fake_behave_free(struct fake *f);

/* exec.c: commands "run" in a fake container (exec probes) */
int fake_exec(const char *const *argv, int64_t timeout_ms, int *exit_code,
    char *out, size_t outlen);

/* containers.c: the vtable */
extern const struct kb_runtime_ops fake_ops;
void fake_free_all(struct fake *f);
/* Write out every held log line (at fini). */
void fake_logs_flush_all(struct fake *f);

int64_t fake_now_ms(void);

#endif

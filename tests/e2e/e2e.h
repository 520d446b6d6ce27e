/* tests/e2e/e2e.h — end-to-end tests: a real `kubus run` with the LMDB
 * store and the API server, driven by real kubectl and by raw HTTP.
 *
 * host.c starts and stops the server process and writes the files the
 * steps use; check.c runs commands and counts results; kubectl.c holds the
 * kubectl steps, http.c the raw-HTTP ones (bad input, limits, streams).
 * Every step prints one line, "ok" or "FAIL" (with the command and what
 * it printed), or "skip" with the reason; the last line is
 * "e2e: N passed, N failed, N skipped".
 */
#ifndef KUBUS_TESTS_E2E_H
#define KUBUS_TESTS_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct e2e {
	char *tmp;        /* everything lives under here */
	char *data;       /* the host's data dir */
	char *home;       /* HOME and kubectl's cache for kubectl */
	char *kubeconfig; /* DATA/admin.kubeconfig */
	char *ca;         /* DATA/apiserver/ca.crt */
	char *kubectl;    /* the kubectl under test */
	char *server;     /* https://127.0.0.1:PORT */
	int port;
	char *admin_token;
	char *viewer_token;
	char *node_token; /* node:n1, group system:nodes */
	pid_t pid; /* the kubus process */
	char *log; /* its output */
	int passed, failed, skipped;
};

/* --- host.c ------------------------------------------------------------------ */

/* Start `kubus run` on a fresh data dir, with extra `--set` values
 * (NULL-terminated, or NULL); false with a message printed. */
bool e2e_start(struct e2e *e, const char *const *sets);
/* SIGTERM, wait, SIGKILL if need be; true when it exited cleanly. */
bool e2e_stop(struct e2e *e, int wait_ms);
/* Is the server process still running (not crashed)? */
bool e2e_alive(struct e2e *e);
/* Write `text` to TMP/name; the path (malloc'd). */
char *e2e_file(struct e2e *e, const char *name, const char *text);
void e2e_free(struct e2e *e);

/* --- check.c ------------------------------------------------------------------- */

/* Expectations, NULL-terminated: "text" must appear in the output,
 * "=text" must be the whole output (trailing whitespace ignored),
 * "~regex" must match a line (POSIX extended), "!text" must not appear. */
bool e2e_expect(const char *out, const char *const *expect, char *why,
    size_t whylen);
/* Run `kubectl ARGS` (a shell fragment, with the e2e's KUBECONFIG, HOME
 * and cache dir) and check its exit status (0 = success, 1 = failure)
 * and output. */
bool e2e_kubectl(struct e2e *e, const char *name, int want, const char *args,
    ...) __attribute__((sentinel));
/* The same with another kubectl binary. */
bool e2e_kubectl_with(struct e2e *e, const char *kubectl, const char *name,
    int want, const char *args, const char *const *expect);
/* Run a shell command (KUBECTL in it is the kubectl with its env). */
bool e2e_sh(struct e2e *e, const char *name, int want, const char *cmd, ...)
    __attribute__((sentinel));
/* The shell prefix that runs kubectl (malloc'd). */
char *e2e_kubectl_cmd(struct e2e *e, const char *kubectl);
void e2e_pass(struct e2e *e, const char *name);
void e2e_fail(struct e2e *e, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void e2e_skip(struct e2e *e, const char *name, const char *why);

/* --- kubectl.c, http.c ---------------------------------------------------------------- */

void e2e_kubectl_steps(struct e2e *e);
void e2e_kubectl_errors(struct e2e *e);
void e2e_old_kubectl(struct e2e *e);
/* rawhttp.c: bad input, limits, gzip, watch ends, through libcurl. */
void e2e_http_steps(struct e2e *e);
/* sockets.c: slowloris and garbage over raw TLS (the slowloris runs in
 * the background: begin before other steps, end after them). */
void e2e_slow_begin(struct e2e *e);
void e2e_slow_end(struct e2e *e);
void e2e_garbage_steps(struct e2e *e);
/* A watch open while the server stops ends, and the server exits:
 * stops the server. */
void e2e_stop_steps(struct e2e *e);
/* On a second server with max_inflight=1: the 429. */
void e2e_inflight_steps(struct e2e *e);
/* semantics.c: object semantics through kubectl and raw HTTP (namespace
 * "sem"; reads the e2e namespace's event ev1). */
void e2e_semantics_steps(struct e2e *e);
/* On a third server with watch_buffer=16: 410 Expired and bookmarks. */
void e2e_watch_expiry_steps(struct e2e *e);

/* --- rawhttp.c helpers, shared with sockets.c ------------------------------------ */

struct e2e_resp {
	long code;
	char *body;
	size_t len;
	char *headers;
	double seconds;
};

/* One HTTPS request; token NULL: none. `hdr` an extra header or NULL.
 * False when it could not be made at all. */
bool e2e_http(struct e2e *e, const char *method, const char *path,
    const char *ctype, const void *body, size_t len, const char *token,
    const char *hdr, long timeout_ms, struct e2e_resp *r);
void e2e_resp_free(struct e2e_resp *r);

#endif

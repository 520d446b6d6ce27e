/* tests/plugins/runtime_record.c — a runtime (extension kind runtime,
 * `runtime: runtime_record`) for kubelet tests without runc: no processes,
 * but every container "runs" until stopped; its state is kept in files
 * under DATA_DIR/runtime-record (config `dir: NAME` for another name), so
 * a restarted kubelet can list and adopt it; and container_create writes
 * what the kubelet resolved into the container's log, one CRI line each:
 *     ...Z stdout F ENV NAME=value
 *     ...Z stdout F MOUNT /host/path /container/path ro|rw
 * so a test reads env and mounts from the log file. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kubus/kubus.h>
#include <kubus/runtime.h>

struct rec {
	char dir[512];
	pthread_mutex_t mu;
	unsigned next;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void new_id(struct rec *r, const char *pre, char *id)
{
	pthread_mutex_lock(&r->mu);
	unsigned n = r->next++;
	pthread_mutex_unlock(&r->mu);
	snprintf(id, KB_RT_ID_MAX, "%s%llx%04x", pre,
	    (unsigned long long)now_ms(), n);
}

static void cri_line(FILE *f, const char *text)
{
	struct timespec ts;
	struct tm tm;
	char t[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "%s.%09ldZ stdout F %s\n", t, ts.tv_nsec, text);
}

/* sandboxes/<id>: uid ns name netns */
static int sb_create(void *rt, const struct kb_rt_sandbox_spec *s,
    struct kb_rt_sandbox *out)
{
	struct rec *r = rt;
	char path[1024];
	new_id(r, "s", out->id);
	snprintf(path, sizeof(path), "%s/sandboxes/%s", r->dir, out->id);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return KB_ESYS;
	fprintf(f, "%s %s %s %s %d\n", s->uid, s->ns, s->name,
	    s->netns_path ? s->netns_path : "-", s->cni_result != NULL);
	fclose(f);
	out->ip[0] = '\0';
	return 0;
}

struct ctr {
	char id[KB_RT_ID_MAX], sandbox[KB_RT_ID_MAX], uid[KB_RT_ID_MAX];
	char name[KB_RT_ID_MAX];
	unsigned attempt;
	int init, state, exit_code;
	long long created, started, finished;
};

static int ctr_read(struct rec *r, const char *id, struct ctr *c)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/containers/%s", r->dir, id);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return KB_ENOTFOUND;
	memset(c, 0, sizeof(*c));
	int n = fscanf(f, "%127s %127s %127s %127s %u %d %d %d %lld %lld %lld",
	    c->id, c->sandbox, c->uid, c->name, &c->attempt, &c->init,
	    &c->state, &c->exit_code, &c->created, &c->started, &c->finished);
	fclose(f);
	return n == 11 ? 0 : KB_EINVAL;
}

static int ctr_write(struct rec *r, const struct ctr *c)
{
	char path[1024], tmp[1040];
	snprintf(path, sizeof(path), "%s/containers/%s", r->dir, c->id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return KB_ESYS;
	fprintf(f, "%s %s %s %s %u %d %d %d %lld %lld %lld\n", c->id,
	    c->sandbox, c->uid, c->name, c->attempt, c->init, c->state,
	    c->exit_code, c->created, c->started, c->finished);
	fclose(f);
	return rename(tmp, path) == 0 ? 0 : KB_ESYS;
}

static void each(struct rec *r, const char *sub,
    void (*fn)(struct rec *r, const char *id, void *arg), void *arg)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", r->dir, sub);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && !strstr(e->d_name, ".tmp"))
			fn(r, e->d_name, arg);
	if (d)
		closedir(d);
}

static void rm_if_in(struct rec *r, const char *id, void *arg)
{
	struct ctr c;
	char path[1024];
	if (ctr_read(r, id, &c) == 0 && !strcmp(c.sandbox, (const char *)arg)) {
		snprintf(path, sizeof(path), "%s/containers/%s", r->dir, id);
		unlink(path);
	}
}

static int sb_remove(void *rt, const char *id)
{
	struct rec *r = rt;
	char path[1024];
	each(r, "containers", rm_if_in, (void *)id);
	snprintf(path, sizeof(path), "%s/sandboxes/%s", r->dir, id);
	unlink(path);
	return 0;
}

static int image_present(void *rt, const char *image, bool *present)
{
	*present = strcmp(image, "missing") != 0;
	return 0;
}

static int c_create(void *rt, const struct kb_rt_container_spec *s, char *id,
    size_t idlen)
{
	struct rec *r = rt;
	struct ctr c = { 0 };
	char rid[KB_RT_ID_MAX];
	new_id(r, "c", rid);
	snprintf(c.id, sizeof(c.id), "%s", rid);
	snprintf(c.sandbox, sizeof(c.sandbox), "%s", s->sandbox_id);
	snprintf(c.uid, sizeof(c.uid), "%s", s->pod_uid);
	snprintf(c.name, sizeof(c.name), "%s", s->name);
	c.attempt = s->attempt;
	c.init = s->init;
	c.state = KB_RT_CREATED;
	c.created = now_ms();
	FILE *f = s->log_path ? fopen(s->log_path, "a") : NULL;
	if (f) {
		char line[4096];
		for (size_t i = 0; s->env && s->env[i]; i++) {
			snprintf(line, sizeof(line), "ENV %s", s->env[i]);
			cri_line(f, line);
		}
		for (size_t i = 0; i < s->nmounts; i++) {
			snprintf(line, sizeof(line), "MOUNT %s %s %s",
			    s->mounts[i].host_path, s->mounts[i].container_path,
			    s->mounts[i].read_only ? "ro" : "rw");
			cri_line(f, line);
		}
		fclose(f);
	}
	int rc = ctr_write(r, &c);
	if (rc == 0)
		snprintf(id, idlen, "%s", c.id);
	return rc;
}

static int c_start(void *rt, const char *id)
{
	struct rec *r = rt;
	struct ctr c;
	int rc = ctr_read(r, id, &c);
	if (rc)
		return rc;
	c.state = KB_RT_RUNNING;
	c.started = now_ms();
	return ctr_write(r, &c);
}

static int c_stop(void *rt, const char *id, int sig, int64_t timeout_ms)
{
	struct rec *r = rt;
	struct ctr c;
	if (ctr_read(r, id, &c) != 0 || c.state != KB_RT_RUNNING)
		return 0;
	c.state = KB_RT_EXITED;
	c.exit_code = 128 + (sig ? sig : SIGKILL);
	c.finished = now_ms();
	return ctr_write(r, &c);
}

static int c_remove(void *rt, const char *id)
{
	struct rec *r = rt;
	char path[1024];
	snprintf(path, sizeof(path), "%s/containers/%s", r->dir, id);
	unlink(path);
	return 0;
}

static int c_status(void *rt, const char *id,
    struct kb_rt_container_status *out)
{
	struct rec *r = rt;
	struct ctr c;
	int rc = ctr_read(r, id, &c);
	if (rc)
		return rc;
	out->state = c.state;
	out->exit_code = c.exit_code;
	out->reason[0] = out->message[0] = '\0';
	out->created_ms = c.created;
	out->started_ms = c.started;
	out->finished_ms = c.finished;
	snprintf(out->image_id, sizeof(out->image_id), "record://%.100s",
	    c.name);
	out->pid = 0;
	return 0;
}

struct lister {
	void (*sfn)(void *, const struct kb_rt_sandbox_info *);
	void (*cfn)(void *, const struct kb_rt_container_info *);
	void *arg;
};

static void list_sb(struct rec *r, const char *id, void *arg)
{
	struct lister *l = arg;
	char path[1024];
	snprintf(path, sizeof(path), "%s/sandboxes/%s", r->dir, id);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	struct kb_rt_sandbox_info sb = { .size = sizeof(sb) };
	char netns[KB_RT_PATH_MAX];
	int hasres;
	snprintf(sb.id, sizeof(sb.id), "%s", id);
	if (fscanf(f, "%127s %127s %127s %511s %d", sb.pod_uid, sb.ns, sb.name,
		netns, &hasres) == 5)
		l->sfn(l->arg, &sb);
	fclose(f);
}

static void list_ctr(struct rec *r, const char *id, void *arg)
{
	struct lister *l = arg;
	struct ctr c;
	if (ctr_read(r, id, &c) != 0)
		return;
	struct kb_rt_container_info ci = { .size = sizeof(ci) };
	snprintf(ci.id, sizeof(ci.id), "%s", c.id);
	snprintf(ci.sandbox_id, sizeof(ci.sandbox_id), "%s", c.sandbox);
	snprintf(ci.pod_uid, sizeof(ci.pod_uid), "%s", c.uid);
	snprintf(ci.name, sizeof(ci.name), "%s", c.name);
	ci.attempt = c.attempt;
	ci.init = c.init;
	ci.state = c.state;
	l->cfn(l->arg, &ci);
}

static int sb_list(void *rt,
    void (*fn)(void *arg, const struct kb_rt_sandbox_info *sb), void *arg)
{
	struct lister l = { .sfn = fn, .arg = arg };
	each(rt, "sandboxes", list_sb, &l);
	return 0;
}

static int c_list(void *rt,
    void (*fn)(void *arg, const struct kb_rt_container_info *c), void *arg)
{
	struct lister l = { .cfn = fn, .arg = arg };
	each(rt, "containers", list_ctr, &l);
	return 0;
}

static int info(void *rt, struct kb_rt_info *out)
{
	snprintf(out->name, sizeof(out->name), "record");
	snprintf(out->version, sizeof(out->version), "0.1");
	return 0;
}

static const struct kb_runtime_ops ops = {
	.size = sizeof(struct kb_runtime_ops),
	.info = info,
	.sandbox_create = sb_create,
	.sandbox_remove = sb_remove,
	.image_present = image_present,
	.container_create = c_create,
	.container_start = c_start,
	.container_stop = c_stop,
	.container_remove = c_remove,
	.container_status = c_status,
	.sandbox_list = sb_list,
	.container_list = c_list,
};

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct rec *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return KB_ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	/* `dir: NAME` (under the data dir) keeps two kubelets of one host
	 * apart, as two runc roots would. */
	const char *sub = kb_conf_str(kb_conf_get(conf, "dir"));
	snprintf(r->dir, sizeof(r->dir), "%s/%s", kb_data_dir(ctx),
	    sub && *sub && !strchr(sub, '/') ? sub : "runtime-record");
	char p[600];
	mkdir(r->dir, 0755);
	snprintf(p, sizeof(p), "%s/sandboxes", r->dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/containers", r->dir);
	mkdir(p, 0755);
	*state = r;
	return 0;
}

static void fini(void *state)
{
	struct rec *r = state;
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "runtime_record",
		.version = "0.1.0",
		.description =
		    "test runtime: records env and mounts, keeps state in files",
		.kind = KB_KIND_RUNTIME,
		.init = init,
		.fini = fini,
		.ops = &ops,
	};
	return &p;
}

/* plugins/runtime-fake/containers.c — the vtable: sandboxes and containers
 * as records in memory. A container "runs" from start until its image's
 * run_for elapses (judged lazily, when asked) or until it is stopped. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake.h"

int64_t fake_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000 };
	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Lists with pprev (fake.h): put n first in the list at *head, take n
 * out of whichever list it is in. */
#define LIST_PUSH(head, n, next, pprev)                                        \
	do {                                                                   \
		(n)->next = *(head);                                           \
		if ((n)->next)                                                 \
			(n)->next->pprev = &(n)->next;                         \
		*(head) = (n);                                                 \
		(n)->pprev = (head);                                           \
	} while (0)
#define LIST_CUT(n, next, pprev)                                               \
	do {                                                                   \
		*(n)->pprev = (n)->next;                                       \
		if ((n)->next)                                                 \
			(n)->next->pprev = (n)->pprev;                         \
	} while (0)

/* snprintf(dst, size, "%s", src), without the formatting: size > 0. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* v as 16 lowercase hex digits, zero-padded ("%016llx"), no NUL. */
static void hex16(char *out, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--, v >>= 4)
		out[i] = digits[v & 15];
}

static void new_id(struct fake *f, char id[KB_RT_ID_MAX])
{
	/* Unique across instances and restarts: the address and the clock
	 * seed it, a counter orders it. */
	uint64_t seed = (uint64_t)(uintptr_t)f ^
	    (uint64_t)fake_now_ms() * 2654435761u;
	hex16(id, seed);
	hex16(id + 16, ++f->next_id);
	id[32] = '\0';
}

static struct fake_ctr *find_ctr(struct fake *f, const char *id)
{
	return kb_strmap_get(&f->ctr_index, id);
}

/* Apply a due exit; under mu. */
static void settle(struct fake_ctr *c)
{
	if (c->state != KB_RT_RUNNING || c->b->run_ms < 0)
		return;
	int64_t end = c->started_ms + c->b->run_ms;
	if (fake_now_ms() < end)
		return;
	c->state = KB_RT_EXITED;
	c->exit_code = (int)c->b->exit_code;
	c->finished_ms = end;
	copy_str(c->reason, sizeof(c->reason),
	    c->exit_code ? "Error" : "Completed");
}

/* Append one record per line of text, in the CRI log format ("head" is
 * "TIMESTAMP stdout F "), to a growing buffer; false when out of memory. */
static bool log_records(char **buf, size_t *len, const char *head,
    size_t headlen, const char *text)
{
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");
		char *nb = realloc(*buf, *len + headlen + n + 1);
		if (nb == NULL)
			return false;
		*buf = nb;
		memcpy(nb + *len, head, headlen);
		memcpy(nb + *len + headlen, p, n);
		nb[*len + headlen + n] = '\n';
		*len += headlen + n + 1;
		p += n;
		if (*p == '\n')
			p++;
	}
	return true;
}

/* mkdir -p of path's parent; 0 or -1. Tries the deepest first: on a
 * hollow node only the pod's and the container's directories are new. */
static int mkdir_parent(const char *path)
{
	char dir[KB_RT_PATH_MAX + 1];
	const char *slash = strrchr(path, '/');
	if (slash == NULL || slash == path ||
	    (size_t)(slash - path) >= sizeof(dir))
		return -1;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (mkdir(dir, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || mkdir_parent(dir) != 0)
		return -1;
	return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Append text to the file at path with one O_APPEND write, making its
 * directory when it is missing: a hollow kubelet leaves that to this
 * runtime. */
static void append_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT && mkdir_parent(path) == 0)
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(fd);
}

static void log_free(struct fake_log *l)
{
	free(l->path);
	free(l->text);
	free(l);
}

/* Write out and forget everything held; under log_mu. */
static void logs_flush_locked(struct fake *f)
{
	kb_strmap_clear(&f->log_index, NULL);
	while (f->logs) {
		struct fake_log *l = f->logs;
		LIST_CUT(l, next, pprev);
		append_file(l->path, l->text, l->len);
		log_free(l);
	}
	f->log_bytes = 0;
}

void fake_logs_flush_all(struct fake *f)
{
	pthread_mutex_lock(&f->log_mu);
	logs_flush_locked(f);
	pthread_mutex_unlock(&f->log_mu);
}

/* The lines of one start (`n` texts), in the CRI log format, held for
 * log_path until the kubelet reads the log (fake_log_sync): most hollow
 * pods' logs are never read, and a file and two directories per pod were
 * most of a hollow node's disk work. */
static void write_log(struct fake *f, const char *path,
    const char *const *texts, size_t n)
{
	if (path == NULL || *path == '\0')
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	/* "%Y-%m-%dT%H:%M:%S.%09ldZ stdout F " */
	char head[128];
	size_t hl = strftime(head, 64, "%Y-%m-%dT%H:%M:%S", &tm);
	head[hl++] = '.';
	long ns = ts.tv_nsec;
	for (int i = 8; i >= 0; i--, ns /= 10)
		head[hl + (size_t)i] = (char)('0' + ns % 10);
	hl += 9;
	static const char tail[] = "Z stdout F ";
	memcpy(head + hl, tail, sizeof(tail) - 1);
	hl += sizeof(tail) - 1;
	char *buf = NULL;
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		if (texts[i] && !log_records(&buf, &len, head, hl, texts[i]))
			break;
	if (len == 0) {
		free(buf);
		return;
	}
	pthread_mutex_lock(&f->log_mu);
	struct fake_log *l = kb_strmap_get(&f->log_index, path);
	if (l) {
		char *nt = realloc(l->text, l->len + len);
		if (nt) {
			memcpy(nt + l->len, buf, len);
			l->text = nt;
			l->len += len;
			f->log_bytes += len;
		} else {
			append_file(path, buf, len);
		}
		free(buf);
	} else if ((l = calloc(1, sizeof(*l))) != NULL &&
	    (l->path = strdup(path)) != NULL &&
	    kb_strmap_put(&f->log_index, l->path, l, NULL) == 0) {
		l->text = buf;
		l->len = len;
		LIST_PUSH(&f->logs, l, next, pprev);
		f->log_bytes += len;
	} else {
		if (l)
			free(l->path);
		free(l);
		append_file(path, buf, len);
		free(buf);
	}
	if (f->log_bytes > FAKE_LOG_HELD_MAX)
		logs_flush_locked(f);
	pthread_mutex_unlock(&f->log_mu);
}

/* runtime.h ABI 1.2. Under log_mu throughout, so that what a start adds
 * lands after what is written here. */
static int fake_log_sync(void *rt, const char *path, bool keep)
{
	struct fake *f = rt;
	size_t pl = strlen(path);
	pthread_mutex_lock(&f->log_mu);
	if (keep) {
		/* One record per path (write_log appends to it). */
		struct fake_log *l = kb_strmap_del(&f->log_index, path);
		if (l) {
			LIST_CUT(l, next, pprev);
			append_file(l->path, l->text, l->len);
			f->log_bytes -= l->len;
			log_free(l);
		}
		pthread_mutex_unlock(&f->log_mu);
		return 0;
	}
	/* A directory: every path under it. */
	for (struct fake_log *l = f->logs, *next; l; l = next) {
		next = l->next;
		if (strncmp(l->path, path, pl) ||
		    (l->path[pl] != '/' && l->path[pl] != '\0'))
			continue;
		kb_strmap_del(&f->log_index, l->path);
		LIST_CUT(l, next, pprev);
		f->log_bytes -= l->len;
		log_free(l);
	}
	pthread_mutex_unlock(&f->log_mu);
	return 0;
}

static int fake_info(void *rt, struct kb_rt_info *out)
{
	struct fake *f = rt;
	if (KB_RT_HAS(out, version)) {
		snprintf(out->name, sizeof(out->name), "fake");
		snprintf(out->version, sizeof(out->version), "%s", f->version);
	}
	return 0;
}

static int fake_sandbox_create(void *rt, const struct kb_rt_sandbox_spec *spec,
    struct kb_rt_sandbox *out)
{
	struct fake *f = rt;
	struct fake_sandbox *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return KB_ENOMEM;
	copy_str(s->uid, sizeof(s->uid), spec->uid ? spec->uid : "");
	copy_str(s->ns, sizeof(s->ns), spec->ns ? spec->ns : "");
	copy_str(s->name, sizeof(s->name), spec->name ? spec->name : "");
	pthread_mutex_lock(&f->mu);
	new_id(f, s->id);
	if (kb_strmap_put(&f->sandbox_index, s->id, s, NULL) != 0) {
		pthread_mutex_unlock(&f->mu);
		free(s);
		return KB_ENOMEM;
	}
	uint64_t n = f->next_ip++;
	snprintf(s->ip, sizeof(s->ip), "%s.%u.%u", f->ip_prefix,
	    (unsigned)(n / 254 % 256), (unsigned)(n % 254 + 1));
	LIST_PUSH(&f->sandboxes, s, next, pprev);
	pthread_mutex_unlock(&f->mu);
	if (KB_RT_HAS(out, ip)) {
		memcpy(out->id, s->id, sizeof(out->id));
		memcpy(out->ip, s->ip, sizeof(out->ip));
	}
	return 0;
}

static void ctr_free(struct fake_ctr *c)
{
	free(c->name);
	free(c->image);
	free(c->log_path);
	free(c);
}

/* Take c out of the index and both its lists, and free it; under mu. */
static void ctr_drop(struct fake *f, struct fake_ctr *c)
{
	kb_strmap_del(&f->ctr_index, c->id);
	LIST_CUT(c, next, pprev);
	LIST_CUT(c, sb_next, sb_pprev);
	ctr_free(c);
}

/* A container is made only in a sandbox that exists, and goes with it:
 * the sandbox's list holds every container of that id. */
static int fake_sandbox_remove(void *rt, const char *id)
{
	struct fake *f = rt;
	pthread_mutex_lock(&f->mu);
	struct fake_sandbox *s = kb_strmap_del(&f->sandbox_index, id);
	if (s) {
		while (s->ctrs)
			ctr_drop(f, s->ctrs);
		LIST_CUT(s, next, pprev);
		free(s);
	}
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int fake_image_present(void *rt, const char *image, bool *present)
{
	*present = !fake_behave_of(rt, image)->missing;
	return 0;
}

static int fake_container_create(void *rt,
    const struct kb_rt_container_spec *spec, char *id, size_t idlen)
{
	struct fake *f = rt;
	if (spec->sandbox_id == NULL || spec->name == NULL ||
	    spec->image == NULL)
		return KB_EINVAL;
	const struct fake_behave *b = fake_behave_of(f, spec->image);
	if (b->missing)
		return KB_ENOTFOUND;
	struct fake_ctr *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return KB_ENOMEM;
	c->name = strdup(spec->name);
	c->image = strdup(spec->image);
	c->log_path = spec->log_path ? strdup(spec->log_path) : NULL;
	if (c->name == NULL || c->image == NULL ||
	    (spec->log_path && c->log_path == NULL)) {
		ctr_free(c);
		return KB_ENOMEM;
	}
	c->b = b;
	c->attempt = spec->attempt;
	c->init = spec->init;
	copy_str(c->pod_uid, sizeof(c->pod_uid),
	    spec->pod_uid ? spec->pod_uid : "");
	c->state = KB_RT_CREATED;
	c->created_ms = fake_now_ms();
	copy_str(c->sandbox, sizeof(c->sandbox), spec->sandbox_id);
	pthread_mutex_lock(&f->mu);
	struct fake_sandbox *s = kb_strmap_get(&f->sandbox_index, c->sandbox);
	if (s == NULL) {
		pthread_mutex_unlock(&f->mu);
		ctr_free(c);
		return KB_ENOTFOUND;
	}
	new_id(f, c->id);
	if (kb_strmap_put(&f->ctr_index, c->id, c, NULL) != 0) {
		pthread_mutex_unlock(&f->mu);
		ctr_free(c);
		return KB_ENOMEM;
	}
	LIST_PUSH(&f->ctrs, c, next, pprev);
	LIST_PUSH(&s->ctrs, c, sb_next, sb_pprev);
	if (idlen)
		copy_str(id, idlen, c->id);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int fake_container_start(void *rt, const char *id)
{
	struct fake *f = rt;
	if (f->start_delay_ms > 0)
		sleep_ms(f->start_delay_ms);
	pthread_mutex_lock(&f->mu);
	struct fake_ctr *c = find_ctr(f, id);
	if (c == NULL || c->state != KB_RT_CREATED) {
		pthread_mutex_unlock(&f->mu);
		return c ? KB_ESTATE : KB_ENOTFOUND;
	}
	c->state = KB_RT_RUNNING;
	c->started_ms = fake_now_ms();
	char *path = c->log_path ? strdup(c->log_path) : NULL;
	char line[512];
	snprintf(line, sizeof(line),
	    "fake: container %s (image %s) attempt %u started", c->name,
	    c->image, c->attempt);
	char *extra = strdup(c->b->log);
	bool exits = c->b->run_ms >= 0;
	int code = (int)c->b->exit_code;
	pthread_mutex_unlock(&f->mu);
	char last[64] = "";
	if (exits)
		snprintf(last, sizeof(last), "fake: exiting with code %d", code);
	const char *texts[] = { line, extra, last };
	write_log(f, path, texts, 3);
	free(extra);
	free(path);
	return 0;
}

static int fake_container_stop(void *rt, const char *id, int sig,
    int64_t timeout_ms)
{
	struct fake *f = rt;
	pthread_mutex_lock(&f->mu);
	struct fake_ctr *c = find_ctr(f, id);
	if (c == NULL) {
		pthread_mutex_unlock(&f->mu);
		return KB_ENOTFOUND;
	}
	settle(c);
	if (c->state != KB_RT_RUNNING) {
		if (c->state == KB_RT_CREATED)
			c->state = KB_RT_EXITED;
		pthread_mutex_unlock(&f->mu);
		return 0;
	}
	bool ignore = c->b->ignore_term && sig != SIGKILL;
	pthread_mutex_unlock(&f->mu);
	/* A container that ignores the signal is killed at the deadline. */
	if (ignore)
		sleep_ms(timeout_ms);
	pthread_mutex_lock(&f->mu);
	if ((c = find_ctr(f, id)) != NULL && c->state == KB_RT_RUNNING) {
		c->state = KB_RT_EXITED;
		c->exit_code = 128 + (ignore ? SIGKILL : sig);
		c->finished_ms = fake_now_ms();
		copy_str(c->reason, sizeof(c->reason), "Error");
	}
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int fake_container_remove(void *rt, const char *id)
{
	struct fake *f = rt;
	pthread_mutex_lock(&f->mu);
	struct fake_ctr *c = find_ctr(f, id);
	if (c)
		ctr_drop(f, c);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int fake_container_status(void *rt, const char *id,
    struct kb_rt_container_status *out)
{
	struct fake *f = rt;
	pthread_mutex_lock(&f->mu);
	struct fake_ctr *c = find_ctr(f, id);
	if (c == NULL) {
		pthread_mutex_unlock(&f->mu);
		return KB_ENOTFOUND;
	}
	settle(c);
	if (KB_RT_HAS(out, pid)) {
		out->state = c->state;
		out->exit_code = c->exit_code;
		copy_str(out->reason, sizeof(out->reason), c->reason);
		out->message[0] = '\0';
		out->created_ms = c->created_ms;
		out->started_ms = c->started_ms;
		out->finished_ms = c->finished_ms;
		snprintf(out->image_id, sizeof(out->image_id), "fake://%s",
		    c->image);
		out->pid = 0;
	}
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/* The lists copy under the lock and call back outside it, so that fn may
 * call into the runtime. */
static int fake_sandbox_list(void *rt,
    void (*fn)(void *arg, const struct kb_rt_sandbox_info *sb), void *arg)
{
	struct fake *f = rt;
	size_t n = 0, i = 0;
	pthread_mutex_lock(&f->mu);
	for (struct fake_sandbox *s = f->sandboxes; s; s = s->next)
		n++;
	struct kb_rt_sandbox_info *v = calloc(n ? n : 1, sizeof(*v));
	for (struct fake_sandbox *s = f->sandboxes; v && s; s = s->next, i++) {
		v[i].size = sizeof(v[i]);
		memcpy(v[i].id, s->id, sizeof(v[i].id));
		memcpy(v[i].pod_uid, s->uid, sizeof(v[i].pod_uid));
		memcpy(v[i].ns, s->ns, sizeof(v[i].ns));
		memcpy(v[i].name, s->name, sizeof(v[i].name));
		memcpy(v[i].ip, s->ip, sizeof(v[i].ip));
	}
	pthread_mutex_unlock(&f->mu);
	if (v == NULL)
		return KB_ENOMEM;
	for (i = 0; i < n; i++)
		fn(arg, &v[i]);
	free(v);
	return 0;
}

static int fake_container_list(void *rt,
    void (*fn)(void *arg, const struct kb_rt_container_info *c), void *arg)
{
	struct fake *f = rt;
	size_t n = 0, i = 0;
	pthread_mutex_lock(&f->mu);
	for (struct fake_ctr *c = f->ctrs; c; c = c->next)
		n++;
	struct kb_rt_container_info *v = calloc(n ? n : 1, sizeof(*v));
	for (struct fake_ctr *c = f->ctrs; v && c; c = c->next, i++) {
		settle(c);
		v[i].size = sizeof(v[i]);
		memcpy(v[i].id, c->id, sizeof(v[i].id));
		memcpy(v[i].sandbox_id, c->sandbox, sizeof(v[i].sandbox_id));
		memcpy(v[i].pod_uid, c->pod_uid, sizeof(v[i].pod_uid));
		snprintf(v[i].name, sizeof(v[i].name), "%s", c->name);
		v[i].attempt = c->attempt;
		v[i].init = c->init;
		v[i].state = c->state;
	}
	pthread_mutex_unlock(&f->mu);
	if (v == NULL)
		return KB_ENOMEM;
	for (i = 0; i < n; i++)
		fn(arg, &v[i]);
	free(v);
	return 0;
}

static int fake_exec_sync(void *rt, const char *id, const char *const *argv,
    int64_t timeout_ms, int *exit_code, char *out, size_t outlen)
{
	struct fake *f = rt;
	if (out && outlen)
		out[0] = '\0';
	if (argv == NULL || argv[0] == NULL)
		return KB_EINVAL;
	pthread_mutex_lock(&f->mu);
	struct fake_ctr *c = find_ctr(f, id);
	if (c)
		settle(c);
	int state = c ? c->state : KB_RT_UNKNOWN;
	pthread_mutex_unlock(&f->mu);
	if (c == NULL)
		return KB_ENOTFOUND;
	if (state != KB_RT_RUNNING) {
		if (out && outlen)
			snprintf(out, outlen, "container %s is not running",
			    id);
		return KB_ESTATE;
	}
	return fake_exec(argv, timeout_ms, exit_code, out, outlen);
}

void fake_free_all(struct fake *f)
{
	kb_strmap_clear(&f->ctr_index, NULL);
	kb_strmap_clear(&f->sandbox_index, NULL);
	while (f->ctrs) {
		struct fake_ctr *c = f->ctrs;
		f->ctrs = c->next;
		ctr_free(c);
	}
	while (f->sandboxes) {
		struct fake_sandbox *s = f->sandboxes;
		f->sandboxes = s->next;
		free(s);
	}
}

const struct kb_runtime_ops fake_ops = {
	.size = sizeof(struct kb_runtime_ops),
	.info = fake_info,
	.sandbox_create = fake_sandbox_create,
	.sandbox_remove = fake_sandbox_remove,
	.image_present = fake_image_present,
	.container_create = fake_container_create,
	.container_start = fake_container_start,
	.container_stop = fake_container_stop,
	.container_remove = fake_container_remove,
	.container_status = fake_container_status,
	.sandbox_list = fake_sandbox_list,
	.container_list = fake_container_list,
	.exec_sync = fake_exec_sync,
	.log_sync = fake_log_sync,
};

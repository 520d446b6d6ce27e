/* plugins/kubelet/logs.c — the `kubelet/<node>` service, op "log": what
 * the API server forwards for GET pods/log. Reads the container's CRI log
 * file (the runtime writes it; see kubus/runtime.h) and answers {text}.
 *
 * body {namespace, pod, container ("" = the first), follow, previous,
 * timestamps, tailLines, sinceSeconds, limitBytes (-1: unset), cursor}.
 *
 * Following is polling with a cursor, so that no state lives here and a
 * client that goes away costs nothing: every answer to a `follow` request
 * carries cursor {attempt, offset} — the attempt's log file and the byte
 * after the last whole line sent — and `done` once the container will not
 * run again and its last file is read to the end. The API server asks again
 * with the cursor (about every 100 ms) and writes each text to the HTTP
 * response as it comes. At the end of a file whose container restarted the
 * cursor moves to the next attempt's file: a follow lasts across restarts.
 * tailLines and sinceSeconds apply to the first request only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kubelet.h"

#define LOG_MAX (16u * 1024 * 1024)
#define CHUNK_MAX (256u * 1024) /* text per follow answer */

struct log_req {
	bool previous, timestamps, follow, has_cursor;
	bool whole; /* a follow's last read: the unfinished line too */
	int64_t tail, since_s, limit;
	uint64_t attempt, offset; /* the cursor */
};

/* Unix seconds of a CRI line's RFC 3339 timestamp (up to its first
 * space); 0 if unreadable. */
static int64_t line_time(const char *s)
{
	int64_t ms;
	return kb_time_parse(s, strcspn(s, " "), &ms) ? ms / 1000 : 0;
}

/* Append one CRI record ("TS STREAM P|F TEXT") to out as kubectl shows it. */
static void add_line(char **out, size_t *len, size_t *cap, const char *line,
    size_t n, bool timestamps)
{
	const char *ts = line, *sp1 = memchr(line, ' ', n);
	const char *sp2 =
	    sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line)) : NULL;
	const char *sp3 =
	    sp2 ? memchr(sp2 + 1, ' ', n - (size_t)(sp2 + 1 - line)) : NULL;
	const char *text = sp3 ? sp3 + 1 : line;
	size_t tl = n - (size_t)(text - line);
	bool partial = sp2 && sp2[1] == 'P';
	size_t need =
	    *len + tl + (timestamps && sp1 ? (size_t)(sp1 - ts) + 1 : 0) + 2;
	if (need > *cap) {
		size_t c = *cap ? *cap * 2 : 4096;
		while (c < need)
			c *= 2;
		char *o = realloc(*out, c);
		if (o == NULL)
			return;
		*out = o;
		*cap = c;
	}
	if (timestamps && sp1) {
		memcpy(*out + *len, ts, (size_t)(sp1 - ts) + 1);
		*len += (size_t)(sp1 - ts) + 1;
	}
	memcpy(*out + *len, text, tl);
	*len += tl;
	if (!partial)
		(*out)[(*len)++] = '\n';
}

/* What the reads of one request gather. */
struct acc {
	char *out;
	size_t len, cap, max;
	size_t *starts, nstarts, capstarts; /* line offsets, for tailLines */
	bool full;
};

/* Lines of f from its position on into a; the byte after the last line
 * used into *pos. A follow leaves a line still being written (no newline
 * yet) for the next time, unless `whole`. */
static void scan(FILE *f, const struct log_req *r, bool whole, struct acc *a,
    uint64_t *pos)
{
	char *buf = NULL;
	size_t n = 0;
	ssize_t got;
	int64_t since =
	    r->since_s > 0 && !r->has_cursor ? time(NULL) - r->since_s : 0;
	while (
	    !(a->full = a->len >= a->max) && (got = getline(&buf, &n, f)) > 0) {
		size_t l = (size_t)got;
		if (r->follow && !whole && buf[l - 1] != '\n')
			break; /* still being written */
		*pos += (size_t)got;
		while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
			l--;
		if (since && line_time(buf) < since)
			continue;
		if (a->nstarts == a->capstarts) {
			a->capstarts = a->capstarts ? a->capstarts * 2 : 256;
			size_t *s =
			    realloc(a->starts, a->capstarts * sizeof(*s));
			if (s == NULL)
				break;
			a->starts = s;
		}
		a->starts[a->nstarts++] = a->len;
		add_line(&a->out, &a->len, &a->cap, buf, l, r->timestamps);
	}
	free(buf);
}

/* Scan path from `from`; KB_ENOENT when it is not there. */
static int scan_file(const char *path, const struct log_req *r, bool whole,
    uint64_t from, struct acc *a, uint64_t *end)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return KB_ENOENT;
	if (from && fseeko(f, (off_t)from, SEEK_SET) != 0) {
		fclose(f);
		return KB_ESYS;
	}
	*end = from;
	scan(f, r, whole, a, end);
	fclose(f);
	return 0;
}

void kl_log_sync(struct kubelet *kl, const char *path, bool keep)
{
	if (KB_RT_HAS(kl->rt, log_sync) && kl->rt->log_sync)
		kl->rt->log_sync(kl->rts, path, keep);
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The log's text from `from` on, as kubectl shows it; *end is the byte
 * after the last line used. A first read takes the rotated file (PATH.1)
 * first; a cursor beyond the end of the file means it was rotated since:
 * the rest of PATH.1 comes first, then the new file from its start. */
static int read_log(const char *path, const struct log_req *r, uint64_t from,
    char **text, size_t *tlen, uint64_t *end, bool *eof)
{
	struct acc a = { .max = r->has_cursor ? CHUNK_MAX : LOG_MAX };
	char old[KB_RT_PATH_MAX + 8];
	snprintf(old, sizeof(old), "%s.1", path);
	uint64_t e;
	int rc;
	if (!r->has_cursor) {
		scan_file(old, r, true, 0, &a, &e);
		rc = scan_file(path, r, r->whole, 0, &a, end);
	} else if (from > file_size(path) && access(path, F_OK) == 0) {
		scan_file(old, r, true, from, &a, &e);
		rc = scan_file(path, r, r->whole, 0, &a, end);
	} else {
		rc = scan_file(path, r, r->whole, from, &a, end);
	}
	if (rc) {
		free(a.out);
		free(a.starts);
		return rc;
	}
	*eof = !a.full;
	char *out = a.out;
	size_t len = a.len;
	size_t skip = 0;
	if (r->tail >= 0 && !r->has_cursor && (size_t)r->tail < a.nstarts)
		skip = r->tail == 0 ? len :
				      a.starts[a.nstarts - (size_t)r->tail];
	free(a.starts);
	size_t keep = len - skip;
	if (r->limit > 0 && (size_t)r->limit < keep)
		keep = (size_t)r->limit;
	*text = malloc(keep + 1);
	if (*text == NULL) {
		free(out);
		return KB_ENOMEM;
	}
	if (keep)
		memcpy(*text, out + skip, keep);
	(*text)[keep] = '\0';
	*tlen = keep;
	free(out);
	return 0;
}

/* Copy src to dst through a temporary file and rename. */
static int copy_file(const char *src, const char *dst)
{
	char tmp[KB_RT_PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	FILE *in = fopen(src, "r"), *out = in ? fopen(tmp, "w") : NULL;
	char buf[65536];
	size_t n;
	int rc = in && out ? 0 : KB_ESYS;
	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			rc = KB_ESYS;
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		rc = KB_ESYS;
	if (rc == 0 && rename(tmp, dst) != 0)
		rc = KB_ESYS;
	if (rc)
		unlink(tmp);
	return rc;
}

void kl_logs_rotate(struct kubelet *kl, int64_t max_bytes)
{
	if (max_bytes <= 0)
		return;
	size_t n = 0, cap = 0;
	char **paths = NULL;
	pthread_mutex_lock(&kl->mu);
	for (struct kl_pod *p = kl->pods; p; p = p->next) {
		for (size_t i = 0; i < p->nctrs; i++) {
			if (!p->ctrs[i].id[0])
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				char **v = realloc(paths, cap * sizeof(*v));
				if (v == NULL)
					break;
				paths = v;
			}
			if (n < cap &&
			    (paths[n] = kl_log_path(kl, p, p->ctrs[i].name,
				 p->ctrs[i].restarts)) != NULL)
				n++;
		}
	}
	pthread_mutex_unlock(&kl->mu);
	for (size_t i = 0; i < n; i++) {
		if (file_size(paths[i]) > (uint64_t)max_bytes) {
			char old[KB_RT_PATH_MAX + 8];
			snprintf(old, sizeof(old), "%s.1", paths[i]);
			/* Copy, then truncate: the runtime's writer appends
			 * (O_APPEND) and goes on at the new end. */
			if (copy_file(paths[i], old) == 0 &&
			    truncate(paths[i], 0) == 0)
				kb_debug(kl->ctx, "container log rotated",
				    "path=\"%s\"", paths[i]);
		}
		free(paths[i]);
	}
	free(paths);
}

void kl_logs_serve(void *arg, kb_msg *req)
{
	struct kubelet *kl = arg;
	const msgpack_object *b = kb_msg_body(req);
	if (strcmp(kb_msg_op(req), "log") != 0) {
		kb_reply_err(req, KB_EMETHOD, "%s serves op `log`, got `%s`",
		    kl->service, kb_msg_op(req));
		return;
	}
	char *ns = kb_mp_strdup(b, "namespace"), *pod = kb_mp_strdup(b, "pod");
	char *ctr = kb_mp_strdup(b, "container");
	char key[600], *path = NULL, name[256] = "";
	int code = 0;
	char why[1400] = "";
	bool done = false, newer = false;
	uint64_t attempt = 0;
	struct log_req r = { .tail = -1, .since_s = -1, .limit = -1 };
	kb_mp_bool(b, "previous", &r.previous);
	kb_mp_bool(b, "timestamps", &r.timestamps);
	kb_mp_bool(b, "follow", &r.follow);
	kb_mp_int(b, "tailLines", &r.tail);
	kb_mp_int(b, "sinceSeconds", &r.since_s);
	kb_mp_int(b, "limitBytes", &r.limit);
	const msgpack_object *cur = kb_mp_get(b, "cursor");
	if (cur && cur->type != MSGPACK_OBJECT_NIL) {
		r.has_cursor = kb_mp_uint(cur, "attempt", &r.attempt) &&
		    kb_mp_uint(cur, "offset", &r.offset);
		if (!r.has_cursor || r.attempt > 1000000) {
			kb_reply_err(req, KB_EBADREQUEST,
			    "log cursor wants {attempt, offset: unsigned integers}");
			goto free;
		}
		r.follow = true;
	}
	if (ns == NULL || pod == NULL) {
		code = KB_EBADREQUEST;
		snprintf(why, sizeof(why),
		    "log wants {namespace, pod, container?}");
		goto out;
	}
	snprintf(key, sizeof(key), "%s/%s", ns, pod);
	pthread_mutex_lock(&kl->mu);
	struct kl_pod *p;
	for (p = kl->pods; p; p = p->next)
		if (!strcmp(p->key, key))
			break;
	const struct kl_ctr *c = NULL;
	for (size_t i = 0; p && i < p->nctrs && c == NULL; i++)
		if ((ctr && *ctr) ? !strcmp(p->ctrs[i].name, ctr) :
				    !p->ctrs[i].init)
			c = &p->ctrs[i];
	if (p == NULL) {
		code = KB_ENOTFOUND;
		snprintf(why, sizeof(why),
		    "pod \"%s\" is not running on node %s", key, kl->node);
	} else if (c == NULL) {
		code = KB_EBADREQUEST;
		snprintf(why, sizeof(why),
		    "container %s is not valid for pod %s", ctr ? ctr : "",
		    pod);
	} else if (r.previous && c->restarts == 0 && !r.has_cursor) {
		code = KB_EBADREQUEST;
		snprintf(why, sizeof(why),
		    "previous terminated container \"%s\" in pod \"%s\" not found",
		    c->name, pod);
	} else {
		snprintf(name, sizeof(name), "%s", c->name);
		if (r.has_cursor && r.attempt > c->restarts)
			r.attempt = c->restarts; /* a cursor from the future */
		attempt = r.has_cursor ? r.attempt :
		    r.previous         ? c->restarts - 1 :
					 c->restarts;
		path = kl_log_path(kl, p, c->name, (unsigned)attempt);
		/* A follow ends when nothing will write again: --previous,
		 * a container that will not restart, a pod going away once
		 * its container is stopped (what it prints on SIGTERM
		 * counts). */
		done = r.previous ||
		    ((c->done || (p->terminating && !c->id[0])) &&
			attempt == c->restarts);
		newer = attempt < c->restarts;
		r.whole = done;
	}
	pthread_mutex_unlock(&kl->mu);
	if (code)
		goto out;
	char *text = NULL;
	size_t len = 0;
	uint64_t end = r.offset;
	bool eof = true;
	if (path)
		kl_log_sync(kl, path, true);
	int rc = path ? read_log(path, &r, r.has_cursor ? r.offset : 0, &text,
			    &len, &end, &eof) :
			KB_ENOMEM;
	if (rc == KB_ENOENT && r.has_cursor) {
		rc = 0; /* the attempt has not written yet */
		text = strdup("");
		end = 0;
	}
	if (rc == KB_ENOENT) {
		code = KB_EBADREQUEST;
		snprintf(why, sizeof(why),
		    "container \"%s\" in pod \"%s\" is waiting to start: ContainerCreating",
		    name, pod);
		goto out;
	}
	if (rc) {
		code = rc;
		snprintf(why, sizeof(why), "cannot read the log of %s/%s: %s",
		    key, name, kb_strerror(rc));
		goto out;
	}
	kb_body *rep;
	if (r.follow) {
		/* At the end of this attempt's file with a newer one there:
		 * go on with the newer. */
		if (eof && newer && !r.previous) {
			attempt++;
			end = 0;
		} else if (!eof) {
			done = false;
		}
		rep = kb_mp_body("{s:S, s:{s:u, s:u}, s:b}", "text", text, len,
		    "cursor", "attempt", attempt, "offset", end, "done", done);
	} else {
		rep = kb_mp_body("{s:S}", "text", text, len);
	}
	free(text);
	if (rep == NULL || kb_reply(req, rep) != 0) {
		if (rep)
			kb_body_unref(rep);
		else
			kb_reply_err(req, KB_ENOMEM, "out of memory");
	}
	req = NULL;
out:
	if (req)
		kb_reply_err(req, code, "%s", why);
free:
	free(ns);
	free(pod);
	free(ctr);
	free(path);
}

/* plugins/kubelet/logs.c — the `kubelet/<node>` service, op "log": what
 * the API server forwards for GET pods/log. Reads the container's CRI log
 * file (the runtime writes it; see kubus/runtime.h) and answers {text}.
 *
 * body {namespace, pod, container ("" = the first), follow, previous,
 * timestamps, tailLines, sinceSeconds, limitBytes} (-1: unset). `follow`
 * answers what is there now: the bus has one reply per request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kubelet.h"

#define LOG_MAX (16u * 1024 * 1024)

struct log_req {
	bool previous, timestamps;
	int64_t tail, since_s, limit;
};

/* Unix seconds of a CRI line's RFC 3339 timestamp; 0 if unreadable. */
static int64_t line_time(const char *s)
{
	struct tm tm = { 0 };
	if (strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return 0;
	return (int64_t)timegm(&tm);
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

static int read_log(const char *path, const struct log_req *r, char **text,
    size_t *tlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return KB_ENOENT;
	char *buf = NULL;
	size_t n = 0;
	ssize_t got;
	/* Offsets of the lines kept, for tailLines. */
	char *out = NULL;
	size_t len = 0, cap = 0;
	size_t *starts = NULL, nstarts = 0, capstarts = 0;
	int64_t since = r->since_s > 0 ? time(NULL) - r->since_s : 0;
	while ((got = getline(&buf, &n, f)) > 0 && len < LOG_MAX) {
		size_t l = (size_t)got;
		while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
			l--;
		if (since && line_time(buf) < since)
			continue;
		if (nstarts == capstarts) {
			capstarts = capstarts ? capstarts * 2 : 256;
			size_t *s = realloc(starts, capstarts * sizeof(*s));
			if (s == NULL)
				break;
			starts = s;
		}
		starts[nstarts++] = len;
		add_line(&out, &len, &cap, buf, l, r->timestamps);
	}
	free(buf);
	fclose(f);
	size_t from = 0;
	if (r->tail >= 0 && (size_t)r->tail < nstarts)
		from = r->tail == 0 ? len : starts[nstarts - (size_t)r->tail];
	free(starts);
	size_t keep = len - from;
	if (r->limit > 0 && (size_t)r->limit < keep)
		keep = (size_t)r->limit;
	*text = malloc(keep + 1);
	if (*text == NULL) {
		free(out);
		return KB_ENOMEM;
	}
	if (keep)
		memcpy(*text, out + from, keep);
	(*text)[keep] = '\0';
	*tlen = keep;
	free(out);
	return 0;
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
	struct log_req r = { .tail = -1, .since_s = -1, .limit = -1 };
	kb_mp_bool(b, "previous", &r.previous);
	kb_mp_bool(b, "timestamps", &r.timestamps);
	kb_mp_int(b, "tailLines", &r.tail);
	kb_mp_int(b, "sinceSeconds", &r.since_s);
	kb_mp_int(b, "limitBytes", &r.limit);
	char key[600], *path = NULL, name[256] = "";
	int code = 0;
	char why[1400] = "";
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
	} else if (r.previous && c->restarts == 0) {
		code = KB_EBADREQUEST;
		snprintf(why, sizeof(why),
		    "previous terminated container \"%s\" in pod \"%s\" not found",
		    c->name, pod);
	} else {
		snprintf(name, sizeof(name), "%s", c->name);
		path = kl_log_path(kl, p, c->name,
		    r.previous ? c->restarts - 1 : c->restarts);
	}
	pthread_mutex_unlock(&kl->mu);
	if (code)
		goto out;
	char *text = NULL;
	size_t len = 0;
	int rc = path ? read_log(path, &r, &text, &len) : KB_ENOMEM;
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
	kb_body *rep = kb_mp_body("{s:S}", "text", text, len);
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
	free(ns);
	free(pod);
	free(ctr);
	free(path);
}

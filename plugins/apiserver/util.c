/* plugins/apiserver/util.c — Kubernetes Status errors and small utilities:
 * RFC 3339 time, v4 UUIDs, DNS-1123 name checks, dotted paths in json_t.
 *
 * The error texts are Kubernetes' own, because kubectl prints them as they
 * come and users search for them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "api.h"

/* --- strings safe for JSON ---------------------------------------------------- */

size_t api_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	if (n < len)
		return 0;
	cp = c & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* A JSON string of s with every invalid byte replaced by U+FFFD: messages
 * quote names from URLs, which nobody validated. */
static json_t *json_str_lossy(const char *s)
{
	size_t n = strlen(s), o = 0;
	const unsigned char *u = (const unsigned char *)s;
	json_t *j = json_string(s);
	char *buf;
	if (j || (buf = malloc(n * 3 + 1)) == NULL)
		return j;
	for (size_t i = 0; i < n;) {
		size_t l = api_utf8_seq(u + i, n - i);
		if (l == 0) {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(buf + o, s + i, l);
		o += l;
		i += l;
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

/* Cut a string that snprintf truncated back to a whole UTF-8 sequence. */
static void utf8_trim_tail(char *s)
{
	size_t n = strlen(s), start = n;
	while (start > 0 && n - start < 4 &&
	    ((unsigned char)s[start - 1] & 0xc0) == 0x80)
		start--;
	if (start > 0 && ((unsigned char)s[start - 1] & 0x80)) {
		start--;
		if (api_utf8_seq((const unsigned char *)s + start, n - start) !=
		    n - start)
			s[start] = '\0';
	}
}

/* Append Go's %q of s (strconv.Quote: printable UTF-8 kept, the rest
 * escaped) to buf of size len, as Kubernetes quotes names in messages. */
static void go_quote(char *buf, size_t len, const char *s)
{
	size_t o = strlen(buf);
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	char tmp[8];
	if (o + 1 >= len)
		return;
	buf[o++] = '"';
	for (size_t i = 0; i < n && o + 1 < len;) {
		size_t l = api_utf8_seq(u + i, n - i);
		const char *esc = NULL;
		switch (u[i]) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\r':
			esc = "\\r";
			break;
		default:
			if (l == 0 || u[i] < 0x20 || u[i] == 0x7f) {
				snprintf(tmp, sizeof tmp, "\\x%02x", u[i]);
				esc = tmp;
				l = 1;
			}
		}
		if (esc) {
			size_t el = strlen(esc);
			if (o + el + 1 >= len)
				break;
			memcpy(buf + o, esc, el);
			o += el;
			i++;
			continue;
		}
		if (o + l + 1 >= len)
			break;
		memcpy(buf + o, s + i, l);
		o += l;
		i += l;
	}
	if (o + 1 < len)
		buf[o++] = '"';
	buf[o] = '\0';
}

/* --- errors --------------------------------------------------------------------- */

void api_err(struct api_error *e, int code, const char *reason, const char *fmt,
    ...)
{
	va_list ap;
	e->code = code;
	e->reason = reason;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	utf8_trim_tail(e->message);
}

void api_err_cause(struct api_error *e, const char *reason, const char *field,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *c;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	utf8_trim_tail(msg);
	if (e->code == 0) {
		e->code = 422;
		e->reason = "Invalid";
	}
	if (e->causes == NULL && (e->causes = json_array()) == NULL)
		return;
	/* StatusCause fields are all omitempty in Kubernetes. */
	c = json_object();
	if (c == NULL)
		return;
	if (reason && *reason)
		json_object_set_new(c, "reason", json_string(reason));
	if (msg[0])
		json_object_set_new(c, "message", json_str_lossy(msg));
	if (field && *field)
		json_object_set_new(c, "field", json_str_lossy(field));
	json_array_append_new(e->causes, c);
}

/* One cause as field.Error prints it: "<field>: <body>". */
static void cause_text(const json_t *c, char *buf, size_t len)
{
	const char *f = json_string_value(json_object_get(c, "field"));
	const char *m = json_string_value(json_object_get(c, "message"));
	snprintf(buf, len, "%s%s%s", f ? f : "", f ? ": " : "", m ? m : "");
}

static bool seen_before(const json_t *causes, size_t upto, const char *text)
{
	char other[1024];
	for (size_t i = 0; i < upto; i++) {
		cause_text(json_array_get(causes, i), other, sizeof other);
		if (strcmp(other, text) == 0)
			return true;
	}
	return false;
}

/* Kubernetes' aggregate error: duplicates dropped, brackets only around
 * more than one distinct message. Truncated to len. */
static void causes_aggregate(const json_t *causes, char *buf, size_t len)
{
	char one[1024], all[4096] = "";
	size_t n = json_array_size(causes), distinct = 0, o = 0;
	for (size_t i = 0; i < n && o < sizeof all; i++) {
		cause_text(json_array_get(causes, i), one, sizeof one);
		if (seen_before(causes, i, one))
			continue;
		o += (size_t)snprintf(all + o, sizeof all - o, "%s%s",
		    distinct ? ", " : "", one);
		distinct++;
	}
	if (distinct == 1)
		snprintf(buf, len, "%s", all);
	else
		snprintf(buf, len, "[%s]", all);
}

void api_err_invalid(struct api_error *e, const char *kind, const char *name)
{
	char agg[1024], head[512] = "";
	snprintf(head, sizeof head, "%s ", kind ? kind : "");
	go_quote(head, sizeof head, name ? name : "");
	e->code = 422;
	e->reason = "Invalid";
	snprintf(e->kind, sizeof e->kind, "%s", kind ? kind : "");
	snprintf(e->name, sizeof e->name, "%s", name ? name : "");
	if (json_array_size(e->causes) == 0) {
		snprintf(e->message, sizeof e->message, "%s is invalid", head);
		return;
	}
	causes_aggregate(e->causes, agg, sizeof agg);
	api_err(e, 422, "Invalid", "%s is invalid: %s", head, agg);
}

/* "deployments.apps" -> kind "deployments", group "apps": callers name a
 * kind or resource qualified by its group as Kubernetes' GroupKind prints
 * it, and Status details carry the two apart. */
static void details_kind(json_t *d, const char *qualified)
{
	const char *dot = strchr(qualified, '.');
	if (dot == NULL) {
		json_object_set_new(d, "kind", json_str_lossy(qualified));
		return;
	}
	char kind[64];
	snprintf(kind, sizeof kind, "%.*s", (int)(dot - qualified), qualified);
	json_object_set_new(d, "group", json_str_lossy(dot + 1));
	json_object_set_new(d, "kind", json_str_lossy(kind));
}

static json_t *status_details(const char *kind, const char *name,
    const json_t *causes)
{
	json_t *d = json_object();
	if (d == NULL)
		return NULL;
	if (name && *name)
		json_object_set_new(d, "name", json_str_lossy(name));
	if (kind && *kind)
		details_kind(d, kind);
	if (json_array_size(causes) > 0)
		json_object_set_new(d, "causes", json_deep_copy(causes));
	if (json_object_size(d) == 0) {
		json_decref(d);
		return NULL;
	}
	return d;
}

static json_t *status_head(const char *status)
{
	json_t *s = json_object();
	if (s == NULL)
		return NULL;
	json_object_set_new(s, "kind", json_string("Status"));
	json_object_set_new(s, "apiVersion", json_string("v1"));
	json_object_set_new(s, "metadata", json_object());
	json_object_set_new(s, "status", json_string(status));
	return s;
}

json_t *api_status(const struct api_error *e)
{
	json_t *s = status_head("Failure"), *d;
	int code = e->code ? e->code : 500;
	if (s == NULL)
		return NULL;
	/* message is omitempty in Kubernetes' Status */
	if (e->message[0])
		json_object_set_new(s, "message", json_str_lossy(e->message));
	else if (e->code == 0)
		json_object_set_new(s, "message",
		    json_string("Internal error occurred: unknown error"));
	if (e->reason && *e->reason)
		json_object_set_new(s, "reason", json_string(e->reason));
	else if (e->code == 0)
		json_object_set_new(s, "reason", json_string("InternalError"));
	d = status_details(e->kind, e->name, e->causes);
	if (d)
		json_object_set_new(s, "details", d);
	json_object_set_new(s, "code", json_integer(code));
	return s;
}

json_t *api_status_success(const char *kind, const char *name)
{
	json_t *s = status_head("Success"), *d;
	if (s == NULL)
		return NULL;
	d = status_details(kind, name, NULL);
	if (d)
		json_object_set_new(s, "details", d);
	return s;
}

void api_err_clear(struct api_error *e)
{
	json_decref(e->causes);
	memset(e, 0, sizeof *e);
}

/* `<kind> "<name>"` from e, or the kind alone, or "". */
static void err_subject(const struct api_error *e, char *buf, size_t len)
{
	buf[0] = '\0';
	if (e->kind[0] && e->name[0]) {
		snprintf(buf, len, "%s ", e->kind);
		go_quote(buf, len, e->name);
	} else if (e->kind[0]) {
		snprintf(buf, len, "%s", e->kind);
	}
}

/* Kubernetes' own message for an error code, built from e's kind and
 * name where it names the object (NewNotFound, NewConflict, …). */
static void err_default_msg(struct api_error *e, int kb)
{
	char subj[512];
	err_subject(e, subj, sizeof subj);
	const char *s = subj[0] ? subj : "the object";
	switch (kb) {
	case KB_ENOTFOUND:
		if (subj[0])
			api_err(e, e->code, e->reason, "%s not found", subj);
		else
			api_err(e, e->code, e->reason, "the server could not "
			    "find the requested resource");
		break;
	case KB_EEXIST:
		api_err(e, e->code, e->reason, "%s already exists", s);
		break;
	case KB_ECONFLICT:
		api_err(e, e->code, e->reason, "Operation cannot be fulfilled "
		    "on %s: the object has been modified; please apply your "
		    "changes to the latest version and try again", s);
		break;
	case KB_EINVAL:
		api_err(e, e->code, e->reason, "%s is invalid", s);
		break;
	case KB_EFORBIDDEN:
		api_err(e, e->code, e->reason, "%s is forbidden",
		    subj[0] ? subj : "the request");
		break;
	case KB_EUNAUTHORIZED:
		api_err(e, e->code, e->reason, "Unauthorized");
		break;
	case KB_ETIMEOUT:
		api_err(e, e->code, e->reason, "Timeout: request did not "
		    "complete within the allowed duration");
		break;
	case KB_ETOOMANY:
		api_err(e, e->code, e->reason,
		    "Too many requests, please try again later.");
		break;
	case KB_EUNAVAILABLE:
	case KB_ECLOSED:
		api_err(e, e->code, e->reason, "the server is currently "
		    "unable to handle the request");
		break;
	default:
		api_err(e, e->code, e->reason, "%s", kb_strerror(kb));
	}
}

void api_err_from_kb(struct api_error *e, int kb_code, const char *msg)
{
	char what[sizeof e->message];
	/* a copy: msg may be e->message itself */
	snprintf(what, sizeof what, "%s", msg ? msg : "");
	e->code = kb_err_http(kb_code);
	e->reason = kb_err_reason(kb_code);
	/* Kubernetes prefixes these two kinds of message; the rest are said
	 * as they are */
	if (kb_code == KB_ETIMEOUT && what[0])
		api_err(e, e->code, e->reason, "Timeout: %s", what);
	else if (e->code == 500)
		api_err(e, e->code, e->reason, "Internal error occurred: %s",
		    what[0] ? what : kb_strerror(kb_code));
	else if (what[0])
		api_err(e, e->code, e->reason, "%s", what);
	else
		err_default_msg(e, kb_code);
}

/* --- time and identity -------------------------------------------------------------- */

static void now_text(time_t t, char *text, size_t len)
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(text, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		text[0] = '\0';
}

int64_t api_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t api_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void api_now(char *buf, size_t len)
{
	/*
	 * Formatted once a second: every create stamps it. One cache for the
	 * process behind a mutex, not per-thread storage: a dlopen-ed
	 * module's _Thread_local lives in dynamic TLS, whose blocks
	 * LeakSanitizer's exit scan follows after the module is unloaded
	 * (and crashes on). A thread that finds the lock taken formats its
	 * own copy.
	 */
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static time_t last = -1;
	static char text[32];
	char mine[32];
	const char *src = mine;
	time_t t = time(NULL);
	if (len == 0)
		return;
	int locked = pthread_mutex_trylock(&mu) == 0;
	if (locked) {
		if (t != last) {
			now_text(t, text, sizeof text);
			last = t;
		}
		src = text;
	} else {
		now_text(t, mine, sizeof mine);
	}
	size_t n = strlen(src);
	if (n >= len)
		buf[0] = '\0'; /* strftime writes nothing when it does not fit */
	else
		memcpy(buf, src, n + 1);
	if (locked)
		pthread_mutex_unlock(&mu);
}

/* n random bytes: getrandom, else /dev/urandom, else time and address
 * bits (never fail: a uid must always be produced). */
static void fill_random(unsigned char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(b + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got == n)
		return;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = read(fd, b, n);
		close(fd);
		if (r == (ssize_t)n)
			return;
	}
	struct timespec ts;
	static unsigned long counter;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long long x = (unsigned long long)ts.tv_nsec ^
	    ((unsigned long long)ts.tv_sec << 20) ^ (uintptr_t)b ^
	    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) *
		0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)x;
	}
}

/* Random bytes from a pool per thread, refilled 256 bytes at a time:
 * every create takes a uid and most a generated name, and a system call
 * for each cost more than the rest of making them. Each byte is handed
 * out once. */
void api_random(void *out, size_t n)
{
	static __thread unsigned char pool[256];
	static __thread size_t left;
	unsigned char *b = out;
	while (n > 0) {
		if (left == 0) {
			fill_random(pool, sizeof(pool));
			left = sizeof(pool);
		}
		size_t k = n < left ? n : left;
		memcpy(b, pool + sizeof(pool) - left, k);
		memset(pool + sizeof(pool) - left, 0, k);
		left -= k;
		b += k;
		n -= k;
	}
}

void api_uuid(char *buf, size_t len)
{
	unsigned char b[16];
	api_random(b, sizeof b);
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	/* 8-4-4-4-12 lowercase hex, as "%02x…" wrote it */
	static const char hex[] = "0123456789abcdef";
	char u[37], *p = u;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 15];
	}
	*p = '\0';
	if (len == 0)
		return;
	size_t n = len - 1 < 36 ? len - 1 : 36;
	memcpy(buf, u, n);
	buf[n] = '\0';
}

/* --- DNS-1123 names -------------------------------------------------------------------- */

static const char dns1123_label_msg[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
    "characters or '-', and must start and end with an alphanumeric "
    "character (e.g. 'my-name',  or '123-abc', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
static const char dns1123_subdomain_msg[] =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

static bool alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..n) */
static bool label_ok(const char *s, size_t n)
{
	if (n == 0 || !alnum_lower(s[0]) || !alnum_lower(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!alnum_lower(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool subdomain_ok(const char *s)
{
	const char *dot;
	for (;;) {
		dot = strchr(s, '.');
		if (!label_ok(s, dot ? (size_t)(dot - s) : strlen(s)))
			return false;
		if (dot == NULL)
			return true;
		s = dot + 1;
	}
}

/* Kubernetes reports a too-long name and a malformed one as two causes;
 * this returns the first, the length. */
const char *api_dns1123_subdomain(const char *s)
{
	if (s == NULL)
		s = "";
	if (strlen(s) > 253)
		return "must be no more than 253 characters";
	return subdomain_ok(s) ? NULL : dns1123_subdomain_msg;
}

const char *api_dns1123_label(const char *s)
{
	if (s == NULL)
		s = "";
	if (strlen(s) > 63)
		return "must be no more than 63 characters";
	if (label_ok(s, strlen(s)))
		return NULL;
	return subdomain_ok(s) ? "must not contain dots" : dns1123_label_msg;
}

/* --- dotted paths ------------------------------------------------------------------------- */

/* One step of a path, as kb_mp_get reads them: a key (with '\' escaping
 * '.', '[' and '\') or an index "[i]". Returns the rest of the path, or
 * NULL when the step is malformed. */
struct path_step {
	bool is_index;
	size_t index;
	char key[256];
};

static const char *path_next(const char *p, struct path_step *st)
{
	size_t n = 0;
	if (*p == '[') {
		char *end;
		if (p[1] < '0' || p[1] > '9')
			return NULL;
		errno = 0;
		unsigned long long i = strtoull(p + 1, &end, 10);
		if (*end != ']' || errno)
			return NULL;
		st->is_index = true;
		st->index = (size_t)i;
		p = end + 1;
		return *p == '.' ? p + 1 : p;
	}
	st->is_index = false;
	while (*p && *p != '.' && *p != '[') {
		if (*p == '\\' && p[1])
			p++;
		if (n + 1 >= sizeof st->key)
			return NULL;
		st->key[n++] = *p++;
	}
	st->key[n] = '\0';
	return *p == '.' ? p + 1 : p;
}

json_t *api_get(const json_t *obj, const char *path)
{
	struct path_step st;
	json_t *cur = (json_t *)obj;
	const char *p = path ? path : "";
	while (cur && *p) {
		p = path_next(p, &st);
		if (p == NULL)
			return NULL;
		if (st.is_index)
			cur = json_array_get(cur, st.index);
		else
			cur = json_object_get(cur, st.key);
	}
	return cur;
}

const char *api_get_str(const json_t *obj, const char *path)
{
	return json_string_value(api_get(obj, path));
}

/* The container for the step after `st`, created in `cur` when missing:
 * an array when the next step is an index, else an object. An index may
 * only create the element one past the end. */
static json_t *path_child(json_t *cur, const struct path_step *st,
    const char *rest)
{
	json_t *next = st->is_index ? json_array_get(cur, st->index) :
				      json_object_get(cur, st->key);
	if (next)
		return next;
	if (st->is_index && st->index != json_array_size(cur))
		return NULL;
	next = *rest == '[' ? json_array() : json_object();
	if (next == NULL)
		return NULL;
	/* the _new setters take the reference even when they fail */
	if (st->is_index ? json_array_append_new(cur, next) :
			   json_object_set_new(cur, st->key, next))
		return NULL;
	return next;
}

/* Set the last step: a key, an existing index, or one past the end. */
static int path_store(json_t *cur, const struct path_step *st, json_t *v)
{
	if (!st->is_index)
		return json_object_set_new(cur, st->key, v) ? KB_EINVAL : 0;
	if (st->index < json_array_size(cur))
		return json_array_set_new(cur, st->index, v) ? KB_EINVAL : 0;
	if (st->index == json_array_size(cur))
		return json_array_append_new(cur, v) ? KB_EINVAL : 0;
	json_decref(v);
	return KB_EINVAL;
}

int api_set(json_t *obj, const char *path, json_t *v)
{
	struct path_step st;
	json_t *cur = obj;
	const char *p = path ? path : "";
	if (v == NULL)
		return KB_EINVAL;
	if (*p == '\0')
		goto fail;
	for (;;) {
		p = path_next(p, &st);
		if (p == NULL ||
		    (st.is_index ? !json_is_array(cur) : !json_is_object(cur)))
			goto fail;
		if (*p == '\0')
			return path_store(cur, &st, v);
		cur = path_child(cur, &st, p);
		if (cur == NULL)
			goto fail;
	}
fail:
	json_decref(v);
	return KB_EINVAL;
}

const char *api_u64_text(uint64_t v, char buf[static 24])
{
	char *p = buf + 23;
	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return p;
}

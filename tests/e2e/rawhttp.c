/* tests/e2e/rawhttp.c — what kubectl never sends: malformed bodies, wrong
 * kinds, huge and deep bodies, bad encodings, odd query parameters and
 * paths. Each must get a clean 4xx Status and change nothing. Also the
 * plain endpoints, gzip, and watches that end on their timeout and when
 * their client goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "e2e.h"

#define CM_PATH "/api/v1/namespaces/e2e/configmaps"
#define BODY_CAP (32u << 20)

/* --- the client ------------------------------------------------------------------ */

struct buf {
	char *p;
	size_t len;
};

static size_t on_data(char *d, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = sz * n;
	if (b->len + add > BODY_CAP)
		return 0;
	char *p = realloc(b->p, b->len + add + 1);
	if (p == NULL)
		return 0;
	memcpy(p + b->len, d, add);
	b->p = p;
	b->len += add;
	p[b->len] = '\0';
	return add;
}

static struct curl_slist *req_headers(const char *ctype, const char *token,
    const char *hdr)
{
	struct curl_slist *h = NULL;
	char line[4096];
	if (ctype) {
		snprintf(line, sizeof(line), "Content-Type: %s", ctype);
		h = curl_slist_append(h, line);
	}
	if (token) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, line);
	}
	if (hdr)
		h = curl_slist_append(h, hdr);
	return curl_slist_append(h, "Expect:");
}

bool e2e_http(struct e2e *e, const char *method, const char *path,
    const char *ctype, const void *body, size_t len, const char *token,
    const char *hdr, long timeout_ms, struct e2e_resp *r)
{
	char url[8192];
	struct buf b = { 0 }, h = { 0 };
	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "%s%s", e->server, path);
	CURL *c = curl_easy_init();
	if (c == NULL)
		return false;
	struct curl_slist *hl = req_headers(ctype, token, hdr);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, e->ca);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
	    timeout_ms > 0 ? timeout_ms : 30000L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	r->body = b.p ? b.p : strdup("");
	r->len = b.len;
	r->headers = h.p ? h.p : strdup("");
	return rc == CURLE_OK || (rc == CURLE_OPERATION_TIMEDOUT && r->code);
}

void e2e_resp_free(struct e2e_resp *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

/* --- judging ------------------------------------------------------------------------- */

/* A Kubernetes Status with this code (and reason, when given)? */
static bool is_status(const struct e2e_resp *r, long code, const char *reason,
    char *why, size_t wl)
{
	json_t *j = json_loads(r->body, 0, NULL);
	const char *kind = json_string_value(json_object_get(j, "kind"));
	const char *av = json_string_value(json_object_get(j, "apiVersion"));
	const char *rs = json_string_value(json_object_get(j, "reason"));
	json_int_t c = json_integer_value(json_object_get(j, "code"));
	bool ok = r->code == code && kind && !strcmp(kind, "Status") && av &&
	    !strcmp(av, "v1") && c == code &&
	    (!reason || (rs && !strcmp(rs, reason))) &&
	    strstr(r->headers, "application/json");
	if (!ok)
		snprintf(why, wl,
		    "expected a %ld %s Status as application/json, got %ld: %.600s",
		    code, reason ? reason : "", r->code, r->body);
	json_decref(j);
	return ok;
}

static void expect_status(struct e2e *e, const char *name, const char *method,
    const char *path, const char *ctype, const void *body, size_t len,
    long code, const char *reason)
{
	struct e2e_resp r;
	char why[1024];
	if (!e2e_http(e, method, path, ctype, body, len, e->admin_token, NULL,
		30000, &r))
		e2e_fail(e, name, "no answer (code %ld)", r.code);
	else if (is_status(&r, code, reason, why, sizeof(why)))
		e2e_pass(e, name);
	else
		e2e_fail(e, name, "%s", why);
	e2e_resp_free(&r);
}

static void expect_code(struct e2e *e, const char *name, const char *path,
    const char *token, long code, const char *needle)
{
	struct e2e_resp r;
	bool made =
	    e2e_http(e, "GET", path, NULL, NULL, 0, token, NULL, 30000, &r);
	if (made && r.code == code && (!needle || strstr(r.body, needle)))
		e2e_pass(e, name);
	else
		e2e_fail(e, name, "GET %s: expected %ld%s%s, got %ld: %.400s",
		    path, code, needle ? " with " : "", needle ? needle : "",
		    r.code, r.body);
	e2e_resp_free(&r);
}

/* The configmaps in e2e, names joined: the state bad input must not change. */
static char *cm_state(struct e2e *e)
{
	struct e2e_resp r;
	if (!e2e_http(e, "GET", CM_PATH, NULL, NULL, 0, e->admin_token, NULL,
		30000, &r))
		return NULL;
	json_t *j = json_loads(r.body, 0, NULL);
	e2e_resp_free(&r);
	size_t i;
	json_t *it;
	char *s = strdup("");
	json_array_foreach(json_object_get(j, "items"), i, it) {
		char *n;
		json_t *md = json_object_get(it, "metadata");
		if (asprintf(&n, "%s%s@%s,", s,
			json_string_value(json_object_get(md, "name")),
			json_string_value(
			    json_object_get(md, "resourceVersion"))) < 0)
			break;
		free(s);
		s = n;
	}
	json_decref(j);
	return s;
}

/* --- steps ---------------------------------------------------------------------------- */

static void plain_endpoints(struct e2e *e)
{
	expect_code(e, "GET /healthz", "/healthz", NULL, 200, "ok");
	expect_code(e, "GET /livez", "/livez", NULL, 200, "ok");
	expect_code(e, "GET /readyz", "/readyz", NULL, 200, "ok");
	expect_code(e, "GET /version without a token", "/version", NULL, 200,
	    "\"gitVersion\"");
	expect_code(e, "GET /metrics", "/metrics", e->admin_token, 200,
	    "apiserver_request_total{");
	expect_code(e, "metrics: latency histograms", "/metrics",
	    e->admin_token, 200, "apiserver_request_duration_seconds_bucket{");
	expect_code(e, "metrics: store latency", "/metrics", e->admin_token,
	    200, "apiserver_storage_request_duration_seconds_bucket{");
	expect_code(e, "metrics: watchers", "/metrics", e->admin_token, 200,
	    "apiserver_registered_watchers ");
	expect_code(e, "unknown query parameters are ignored",
	    CM_PATH "?foo=bar&zzz&limit=5", e->admin_token, 200,
	    "\"ConfigMapList\"");
	struct e2e_resp r;
	char why[1024];
	e2e_http(e, "GET", "/api", NULL, NULL, 0, NULL, NULL, 10000, &r);
	if (is_status(&r, 401, "Unauthorized", why, sizeof(why)))
		e2e_pass(e, "no token: 401 Status");
	else
		e2e_fail(e, "no token: 401 Status", "%s", why);
	e2e_resp_free(&r);
	e2e_http(e, "GET", CM_PATH, NULL, NULL, 0, "bogus", NULL, 10000, &r);
	if (is_status(&r, 401, "Unauthorized", why, sizeof(why)))
		e2e_pass(e, "bad token: 401 Status");
	else
		e2e_fail(e, "bad token: 401 Status", "%s", why);
	e2e_resp_free(&r);
}

static void bad_bodies(struct e2e *e)
{
	static const char bad_json[] =
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x1\"";
	static const char bad_yaml[] =
	    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n  - ]]\n";
	static const char bad_pb[] = "k8s\0\x0a\xff\xff\xff\xff\x0f\x12";
	static const char no_magic[] = "\x0a\x04\x0a\x02v1\x12\x00";
	static const char kind[] =
	    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"k1\"}}";
	static const char ver[] =
	    "{\"apiVersion\":\"v2\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"v1x\"}}";
	static const char utf[] =
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"u1\"},"
	    "\"data\":{\"a\":\"\xff\xfe\xc3\"}}";
	static const char arr[] = "[1,2,3]";
	expect_status(e, "malformed JSON", "POST", CM_PATH, "application/json",
	    bad_json, sizeof(bad_json) - 1, 400, "BadRequest");
	expect_status(e, "malformed YAML", "POST", CM_PATH, "application/yaml",
	    bad_yaml, sizeof(bad_yaml) - 1, 400, "BadRequest");
	expect_status(e, "malformed protobuf", "POST", CM_PATH,
	    "application/vnd.kubernetes.protobuf", bad_pb, sizeof(bad_pb) - 1,
	    400, "BadRequest");
	expect_status(e, "protobuf without the k8s magic", "POST", CM_PATH,
	    "application/vnd.kubernetes.protobuf", no_magic,
	    sizeof(no_magic) - 1, 400, "BadRequest");
	expect_status(e, "wrong kind", "POST", CM_PATH, "application/json",
	    kind, sizeof(kind) - 1, 400, "BadRequest");
	expect_status(e, "wrong apiVersion", "POST", CM_PATH,
	    "application/json", ver, sizeof(ver) - 1, 400, "BadRequest");
	expect_status(e, "invalid UTF-8", "POST", CM_PATH, "application/json",
	    utf, sizeof(utf) - 1, 400, "BadRequest");
	expect_status(e, "an array, not an object", "POST", CM_PATH,
	    "application/json", arr, sizeof(arr) - 1, 400, "BadRequest");
	expect_status(e, "text/plain body", "POST", CM_PATH, "text/plain",
	    "hello", 5, 415, "UnsupportedMediaType");
	expect_status(e, "PATCH with an unknown patch type", "PATCH",
	    CM_PATH "/cm1", "application/json", "{}", 2, 415,
	    "UnsupportedMediaType");
	expect_status(e, "malformed merge patch", "PATCH", CM_PATH "/cm1",
	    "application/merge-patch+json", "{\"data\":", 8, 400, "BadRequest");
}

static void big_bodies(struct e2e *e)
{
	size_t big = 5u << 20;
	char *huge = malloc(big);
	memset(huge, ' ', big);
	memcpy(huge, "{\"data\":\"", 9);
	expect_status(e, "huge body: 413", "POST", CM_PATH, "application/json",
	    huge, big, 413, "RequestEntityTooLarge");
	free(huge);
	size_t depth = 20000, n = 0;
	char *deep = malloc(depth * 2 + 256);
	n += (size_t)sprintf(deep,
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"deep\"},\"x\":");
	memset(deep + n, '[', depth);
	n += depth;
	memset(deep + n, ']', depth);
	n += depth;
	deep[n++] = '}';
	expect_status(e, "deep nesting", "POST", CM_PATH, "application/json",
	    deep, n, 400, "BadRequest");
	free(deep);
}

static void bad_paths(struct e2e *e)
{
	expect_status(e, "unknown resource", "GET", "/api/v1/nosuch", NULL,
	    NULL, 0, 404, "NotFound");
	expect_status(e, "unknown group", "GET",
	    "/apis/nosuch.example/v1/things", NULL, NULL, 0, 404, "NotFound");
	expect_status(e, "unknown top-level path", "GET", "/nosuch/path", NULL,
	    NULL, 0, 404, "NotFound");
	expect_status(e, "cluster-scoped under a namespace", "GET",
	    "/api/v1/namespaces/e2e/nodes", NULL, NULL, 0, 404, "NotFound");
	expect_status(e, "PUT on a collection", "PUT", CM_PATH,
	    "application/json", "{}", 2, 405, "MethodNotAllowed");
	expect_status(e, "invalid UTF-8 in the path", "GET", CM_PATH "/%ff%fe",
	    NULL, NULL, 0, 400, "BadRequest");
	expect_status(e, "invalid UTF-8 in a query", "GET",
	    CM_PATH "?labelSelector=%ff", NULL, NULL, 0, 400, "BadRequest");
	expect_status(e, "malformed label selector", "GET",
	    CM_PATH "?labelSelector=a%20in%20(", NULL, NULL, 0, 400,
	    "BadRequest");
	expect_status(e, "unsupported field selector", "GET",
	    CM_PATH "?fieldSelector=spec.nosuch%3D1", NULL, NULL, 0, 400,
	    "BadRequest");
	expect_status(e, "malformed limit", "GET", CM_PATH "?limit=abc", NULL,
	    NULL, 0, 400, "BadRequest");
	expect_status(e, "exec is answered clearly", "GET",
	    "/api/v1/namespaces/e2e/pods/x/exec?command=ls", NULL, NULL, 0, 400,
	    "BadRequest");
	struct e2e_resp r;
	char *hdr = malloc(300 * 1024);
	memcpy(hdr, "X-Big: ", 7);
	memset(hdr + 7, 'a', 300 * 1024 - 8);
	hdr[300 * 1024 - 1] = '\0';
	bool made = e2e_http(e, "GET", CM_PATH, NULL, NULL, 0, e->admin_token,
	    hdr, 10000, &r);
	if (!made || (r.code >= 400 && r.code < 500) || r.code == 0)
		e2e_pass(e, "huge header: refused");
	else
		e2e_fail(e, "huge header: refused", "got %ld", r.code);
	e2e_resp_free(&r);
	free(hdr);
}

static void gzip_and_watches(struct e2e *e)
{
	struct e2e_resp r;
	e2e_http(e, "GET", "/openapi/v3/apis/apps/v1", NULL, NULL, 0,
	    e->admin_token, NULL, 10000, &r);
	json_t *j = json_loads(r.body, 0, NULL);
	if (r.code == 200 && strcasestr(r.headers, "Content-Encoding: gzip") &&
	    j)
		e2e_pass(e, "gzip when asked");
	else
		e2e_fail(e, "gzip when asked", "code %ld, headers:\n%s", r.code,
		    r.headers);
	json_decref(j);
	e2e_resp_free(&r);
	e2e_http(e, "GET", CM_PATH "?watch=true&timeoutSeconds=2", NULL, NULL,
	    0, e->admin_token, NULL, 15000, &r);
	if (r.code == 200 && r.seconds >= 1.5 && r.seconds < 6 &&
	    strstr(r.body, "{\"type\":\"ADDED\""))
		e2e_pass(e, "watch ends on timeoutSeconds");
	else
		e2e_fail(e, "watch ends on timeoutSeconds",
		    "code %ld after %.1f s: %.300s", r.code, r.seconds, r.body);
	e2e_resp_free(&r);
	/* The client gives up after a second; the server must notice. */
	e2e_http(e, "GET", CM_PATH "?watch=true", NULL, NULL, 0, e->admin_token,
	    NULL, 1000, &r);
	e2e_resp_free(&r);
	bool gone = false;
	for (int i = 0; i < 30 && !gone; i++) {
		usleep(100000);
		e2e_http(e, "GET", "/metrics", NULL, NULL, 0, e->admin_token,
		    NULL, 10000, &r);
		gone = strstr(r.body, "\napiserver_registered_watchers 0\n") !=
		    NULL;
		e2e_resp_free(&r);
	}
	if (gone)
		e2e_pass(e, "watch ends when its client goes");
	else
		e2e_fail(e, "watch ends when its client goes",
		    "apiserver_registered_watchers stayed above 0");
}

void e2e_http_steps(struct e2e *e)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	char *before = cm_state(e);
	plain_endpoints(e);
	bad_bodies(e);
	big_bodies(e);
	bad_paths(e);
	char *after = cm_state(e);
	if (before && after && !strcmp(before, after))
		e2e_pass(e, "bad input changed nothing");
	else
		e2e_fail(e, "bad input changed nothing",
		    "before: %s\n     after:  %s", before, after);
	free(before);
	free(after);
	gzip_and_watches(e);
}

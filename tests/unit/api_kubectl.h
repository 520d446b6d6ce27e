/* tests/unit/api_kubectl.h — real kubectl against the API server's parts.
 *
 * A small plain-HTTP server on 127.0.0.1 (libmicrohttpd, its own thread
 * in the test process, so ASan sees every allocation the parts make)
 * answers discovery from api_discovery() and anything else from a route
 * function the test supplies. kubectl runs with HOME, KUBECONFIG and the
 * cache in a fresh temporary directory, so no discovery or OpenAPI cache
 * survives from one run to the next.
 *
 * Header-only: included by the test_api_*.c files that drive kubectl.
 */
#ifndef KUBUS_TESTS_API_KUBECTL_H
#define KUBUS_TESTS_API_KUBECTL_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api.h"

/* Answer a request that is not discovery: return a body (new
 * reference) and set *code, or NULL for a 404. `query` is "k=v&…"
 * (decoded), `body` the parsed JSON body or NULL. */
typedef json_t *(*kt_route_fn)(const char *method, const char *path,
    const char *query, const char *accept, const json_t *body, int *code);

#define KT_FN static __attribute__((unused))

struct kt_server {
	struct MHD_Daemon *d;
	unsigned port;
	kt_route_fn route;
	char *home;         /* the temporary HOME */
	pthread_mutex_t mu; /* guards the log: one thread per connection */
	char log[65536];    /* "METHOD path [accept]\n" per request */
	size_t loglen;
};

KT_FN void kt_log(struct kt_server *s, const char *method, const char *url,
    const char *query, const char *accept)
{
	pthread_mutex_lock(&s->mu);
	int n = snprintf(s->log + s->loglen, sizeof(s->log) - s->loglen,
	    "%s %s%s%s [%s]\n", method, url, *query ? "?" : "", query,
	    accept ? accept : "");
	if (n > 0 && s->loglen + (size_t)n < sizeof(s->log))
		s->loglen += (size_t)n;
	pthread_mutex_unlock(&s->mu);
}

KT_FN enum MHD_Result kt_send(struct MHD_Connection *c, int code, json_t *body,
    const char *ct)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(text ? strlen(text) : 0, text,
		MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", ct);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)code, r);
	MHD_destroy_response(r);
	return ret;
}

KT_FN json_t *kt_not_found(const char *path)
{
	char msg[512];
	snprintf(msg, sizeof(msg),
	    "the server could not find the requested "
	    "resource (get %s)",
	    path);
	return json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind",
	    "Status", "apiVersion", "v1", "metadata", "status", "Failure",
	    "message", msg, "reason", "NotFound", "code", 404);
}

/* The request body, gathered over the handler's upload calls. */
struct kt_upload {
	char *data;
	size_t len;
};

static enum MHD_Result kt_arg(void *cls, enum MHD_ValueKind kind,
    const char *key, const char *value)
{
	char *q = cls;
	size_t n = strlen(q);
	(void)kind;
	snprintf(q + n, 2048 - n, "%s%s=%s", n ? "&" : "", key,
	    value ? value : "");
	return MHD_YES;
}

static enum MHD_Result kt_answer(struct kt_server *s, struct MHD_Connection *c,
    const char *url, const char *method, struct kt_upload *up)
{
	const char *accept =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
	char query[2048] = "";
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, kt_arg, query);
	kt_log(s, method, url, query, accept);
	struct api_resp resp = { 0 };
	if (!strcmp(method, "GET") &&
	    api_discovery(url, accept,
		MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hash"),
		&resp)) {
		const char *ct =
		    resp.content_type ? resp.content_type : "application/json";
		if (resp.json)
			return kt_send(c, resp.code, resp.json, ct);
		/* an OpenAPI document: its text, ETag and redirect */
		struct MHD_Response *r = MHD_create_response_from_buffer(
		    resp.text_len, resp.text, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(r, "Content-Type", ct);
		if (resp.etag)
			MHD_add_response_header(r, "ETag", resp.etag);
		if (resp.location)
			MHD_add_response_header(r, "Location", resp.location);
		enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp.code, r);
		MHD_destroy_response(r);
		return ret;
	}
	int code = 200;
	json_t *body = up && up->len ? json_loadb(up->data, up->len, 0, NULL) :
				       NULL;
	json_t *out =
	    s->route ? s->route(method, url, query, accept, body, &code) : NULL;
	json_decref(body);
	if (out == NULL)
		return kt_send(c, 404, kt_not_found(url), "application/json");
	return kt_send(c, code, out, "application/json");
}

static enum MHD_Result kt_handler(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **state)
{
	struct kt_upload *up = *state;
	(void)version;
	if (up == NULL) {
		/* first call: headers only; the body (if any) follows */
		*state = calloc(1, sizeof(*up));
		return *state ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		char *p = realloc(up->data, up->len + *upload_size + 1);
		if (p == NULL)
			return MHD_NO;
		memcpy(p + up->len, upload, *upload_size);
		up->data = p;
		up->len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	enum MHD_Result r = kt_answer(cls, c, url, method, up);
	free(up->data);
	free(up);
	*state = NULL;
	return r;
}

KT_FN char *kt_mkdtemp(void)
{
	char tmpl[] = "/tmp/kubus-kubectl-XXXXXX";
	return mkdtemp(tmpl) ? strdup(tmpl) : NULL;
}

KT_FN void kt_rmrf(const char *dir)
{
	char cmd[512];
	if (dir && !strncmp(dir, "/tmp/kubus-kubectl-", 19)) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
}

KT_FN struct kt_server *kt_start(kt_route_fn route)
{
	struct kt_server *s = calloc(1, sizeof(*s));
	s->route = route;
	pthread_mutex_init(&s->mu, NULL);
	s->home = kt_mkdtemp();
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
	    0, NULL, NULL, kt_handler, s, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
	    MHD_OPTION_END);
	if (s->d == NULL || s->home == NULL) {
		free(s->home);
		free(s);
		return NULL;
	}
	const union MHD_DaemonInfo *i =
	    MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = i ? i->port : 0;
	/* An empty config: older kubectl warns when the file is missing. */
	char path[512];
	snprintf(path, sizeof(path), "%s/kubeconfig", s->home);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs("apiVersion: v1\nkind: Config\n", f);
		fclose(f);
	}
	return s;
}

KT_FN void kt_stop(struct kt_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->d);
	kt_rmrf(s->home);
	free(s->home);
	free(s);
}

/* Run `<kubectl> --server=… <args>` (stdout and stderr); returns the
 * output (malloc'd) and sets *status to the exit status. KUBECTL in the
 * environment picks another binary (e.g. Debian's 1.20). */
KT_FN char *kt_kubectl(struct kt_server *s, const char *args, int *status)
{
	const char *bin = getenv("KUBECTL") ? getenv("KUBECTL") : "kubectl";
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	    "HOME='%s' KUBECONFIG='%s/kubeconfig' "
	    "KUBECACHEDIR='%s/cache' %s --server=http://127.0.0.1:%u %s 2>&1",
	    s->home, s->home, s->home, bin, s->port, args);
	s->loglen = 0;
	s->log[0] = '\0';
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		return NULL;
	size_t len = 0, cap = 4096;
	char *out = malloc(cap);
	size_t n;
	while (out && (n = fread(out + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 1024) {
			char *more = realloc(out, cap * 2);
			if (more == NULL)
				break;
			out = more;
			cap *= 2;
		}
	}
	int st = pclose(f);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (out)
		out[len] = '\0';
	return out;
}

/* kubectl runs at all here (the tests skip when it does not). */
KT_FN bool kt_have_kubectl(void)
{
	const char *bin = getenv("KUBECTL") ? getenv("KUBECTL") : "kubectl";
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s version --client >/dev/null 2>&1", bin);
	return system(cmd) == 0;
}

#endif

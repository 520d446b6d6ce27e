/* tests/unit/test_kubelet_probes.c — the kubelet's probes, events and
 * `kubectl logs -f`, with runtime-fake on a real host (store-lmdb +
 * apiserver over HTTPS) and real kubectl:
 *   - readiness (exec) failing keeps the pod not Ready; passing makes it
 *     Ready; failing again takes Ready away;
 *   - liveness failing restarts the container, restartCount grows, with
 *     Killing/Unhealthy events aggregated into counts;
 *   - startup gates liveness;
 *   - httpGet and tcpSocket against a small HTTP server of this test on
 *     127.0.0.1 (hostNetwork pods on a node whose address is 127.0.0.1),
 *     HTTPS against the API server's /healthz, a named port;
 *   - `kubectl logs -f` streams lines as they are appended, across log
 *     rotation and across restarts, and ends when the pod goes; --tail,
 *     --timestamps,
 *     --limit-bytes, --previous, -c;
 *   - events in `kubectl get events` and `kubectl describe pod`.
 * runtime-fake's exec: `cat FILE` succeeds when FILE exists on the host,
 * `false` fails (plugins/runtime-fake/exec.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define NODE "node-1"
#define WAIT_MS 15000

/* --- a tiny HTTP server on 127.0.0.1 ------------------------------------------ */

struct http_srv {
	int fd, port;
	pthread_t thread;
	volatile int stop;
	pthread_mutex_t mu;
	char seen[8192]; /* request heads, appended */
	size_t seenlen;
};

static void *http_main(void *arg)
{
	struct http_srv *s = arg;
	while (!s->stop) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		char buf[2048];
		size_t got = 0;
		struct pollfd q = { .fd = c, .events = POLLIN };
		while (got < sizeof(buf) - 1 && poll(&q, 1, 1000) > 0) {
			ssize_t n =
			    recv(c, buf + got, sizeof(buf) - 1 - got, 0);
			if (n <= 0)
				break;
			got += (size_t)n;
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		buf[got] = '\0';
		pthread_mutex_lock(&s->mu);
		if (s->seenlen + got < sizeof(s->seen)) {
			memcpy(s->seen + s->seenlen, buf, got);
			s->seenlen += got;
			s->seen[s->seenlen] = '\0';
		}
		pthread_mutex_unlock(&s->mu);
		const char *rep = strncmp(buf, "GET /healthz ", 13) == 0 ?
		    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok" :
		    strncmp(buf, "GET /moved ", 11) == 0 ?
		    "HTTP/1.1 302 Found\r\nLocation: /healthz\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" :
		    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbad\n";
		ssize_t w = send(c, rep, strlen(rep), MSG_NOSIGNAL);
		(void)w;
		close(c);
	}
	return NULL;
}

/* A port nothing listens on: bound, then closed. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
}

static bool http_start(struct http_srv *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(s->fd, 16) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &al) != 0)
		return false;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->thread, NULL, http_main, s) == 0;
}

static void http_stop(struct http_srv *s)
{
	s->stop = 1;
	pthread_join(s->thread, NULL);
	close(s->fd);
	pthread_mutex_destroy(&s->mu);
}

/* --- the host and kubectl -------------------------------------------------------- */

struct env {
	struct kbt_host *h;
	kb_ctx *c;
	char *tmp;     /* files the probes look at, YAML, kubectl's HOME */
	char *kubectl; /* "KUBECONFIG=… HOME=… kubectl" */
	struct http_srv http;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int setup(void **state)
{
	static const char yaml[] =
	    "host: {log_level: warn}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\"}\n"
	    "  - name: kubelet\n"
	    "    use: kubelet\n"
	    "    config:\n"
	    "      node_name: " NODE "\n"
	    "      address: 127.0.0.1\n"
	    "      runtime: runtime-fake\n"
	    "      runtime_config:\n"
	    "        images:\n"
	    "          crashy: {exit_code: 1, run_for: 1s, log: \"crash soon\"}\n"
	    "      lease_interval: 1s\n"
	    "      sync_period: 100ms\n"
	    "      backoff_initial: 200ms\n"
	    "      backoff_max: 1s\n"
	    "      workers: 2\n"
	    "      container_log_max_size: 2Ki\n";
	char err[1024];
	struct env *e = calloc(1, sizeof(*e));
	e->h = kbt_host_start(yaml, err, sizeof(err));
	if (e->h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		free(e);
		return -1;
	}
	const char *groups[] = { "kubus:plugins" };
	e->c = kbt_client(e->h, "tester", "plugin:tester", groups, 1);
	e->tmp = kbt_mkdtemp("kl-probes");
	if (asprintf(&e->kubectl,
		"KUBECONFIG=%s/admin.kubeconfig HOME=%s kubectl "
		"--cache-dir=%s/cache --request-timeout=20s",
		kbt_host_data_dir(e->h), e->tmp, e->tmp) < 0)
		return -1;
	if (!http_start(&e->http))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	kbt_host_stop(e->h);
	http_stop(&e->http);
	kbt_rmrf(e->tmp);
	free(e->tmp);
	free(e->kubectl);
	free(e);
	return 0;
}

static bool have_kubectl(void)
{
	if (access("/usr/bin/kubectl", X_OK) == 0 ||
	    system("command -v kubectl >/dev/null 2>&1") == 0)
		return true;
	printf("skip: no kubectl on this machine (these steps drive the real "
	       "one)\n");
	return false;
}

/* Run `kubectl ARGS`; its output (malloc'd) and exit status. */
static int kubectl(struct env *e, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int kubectl(struct env *e, char **out, const char *fmt, ...)
{
	char args[2048], *cmd;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	if (asprintf(&cmd, "%s %s", e->kubectl, args) < 0)
		return -1;
	char *o = NULL;
	int st = kbt_run(cmd, &o);
	free(cmd);
	if (out)
		*out = o;
	else
		free(o);
	return st;
}

static void apply(struct env *e, const char *name, const char *yaml)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s.yaml", e->tmp, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	char *out = NULL;
	int st = kubectl(e, &out, "apply -f %s", path);
	if (st != 0)
		fail_msg("kubectl apply %s: %s", name, out ? out : "");
	free(out);
}

static kb_msg *get_pod(struct env *e, const char *name)
{
	kb_msg *rep = NULL;
	if (kb_api_get(e->c, &KB_GVR_PODS, "default", name, &rep) != 0) {
		kb_msg_free(rep);
		return NULL;
	}
	return rep;
}

/* "True", "False" or NULL: the pod's condition. */
static bool cond_is(const msgpack_object *pod, const char *type,
    const char *want)
{
	const msgpack_object *cs = kb_mp_get(pod, "status.conditions");
	for (uint32_t i = 0;
	     cs && cs->type == MSGPACK_OBJECT_ARRAY && i < cs->via.array.size;
	     i++)
		if (kb_mp_streq(&cs->via.array.ptr[i], "type", type))
			return kb_mp_streq(&cs->via.array.ptr[i], "status",
			    want);
	return false;
}

typedef bool (*pod_check)(const msgpack_object *pod, const void *arg);

static bool wait_pod(struct env *e, const char *name, pod_check fn,
    const void *arg, int ms)
{
	for (int waited = 0; waited < ms; waited += 100) {
		kb_msg *m = get_pod(e, name);
		bool ok = m && fn(kb_msg_body(m), arg);
		if (!ok && waited + 100 >= ms && m) {
			char buf[4096];
			fprintf(stderr, "pod %s last seen: %s\n", name,
			    kb_mp_repr(kb_msg_body(m), buf, sizeof(buf)));
		}
		kb_msg_free(m);
		if (ok)
			return true;
		sleep_ms(100);
	}
	return false;
}

static bool is_running(const msgpack_object *pod, const void *arg)
{
	(void)arg;
	return kb_mp_streq(pod, "status.phase", "Running");
}

static bool is_ready(const msgpack_object *pod, const void *arg)
{
	(void)arg;
	return cond_is(pod, "Ready", "True") &&
	    cond_is(pod, "ContainersReady", "True");
}

static bool not_ready(const msgpack_object *pod, const void *arg)
{
	(void)arg;
	bool r = true;
	return kb_mp_streq(pod, "status.phase", "Running") &&
	    cond_is(pod, "Ready", "False") &&
	    cond_is(pod, "ContainersReady", "False") &&
	    kb_mp_bool(pod, "status.containerStatuses[0].ready", &r) && !r;
}

static bool restarts_at_least(const msgpack_object *pod, const void *arg)
{
	int64_t n = 0;
	return kb_mp_int(pod, "status.containerStatuses[0].restartCount", &n) &&
	    n >= *(const int *)arg;
}

static int64_t restarts(struct env *e, const char *name)
{
	int64_t n = -1;
	kb_msg *m = get_pod(e, name);
	if (m)
		kb_mp_int(kb_msg_body(m),
		    "status.containerStatuses[0].restartCount", &n);
	kb_msg_free(m);
	return n;
}

/* Events about a pod: how many objects with `reason`, and their largest
 * count; the first message into msg. */
static int events_of(struct env *e, const char *pod, const char *reason,
    int64_t *max_count, char *msg, size_t msglen)
{
	kb_msg *rep = NULL;
	int n = 0;
	*max_count = 0;
	if (msg)
		msg[0] = '\0';
	if (kb_api_list(e->c, &KB_GVR_EVENTS, "default", NULL, NULL, &rep) !=
	    0) {
		kb_msg_free(rep);
		return 0;
	}
	const msgpack_object *items = kb_mp_get(kb_msg_body(rep), "items");
	for (uint32_t i = 0; items && items->type == MSGPACK_OBJECT_ARRAY &&
	     i < items->via.array.size;
	     i++) {
		const msgpack_object *ev = &items->via.array.ptr[i];
		if (!kb_mp_streq(ev, "involvedObject.name", pod) ||
		    !kb_mp_streq(ev, "reason", reason))
			continue;
		n++;
		int64_t c = 0;
		kb_mp_int(ev, "count", &c);
		if (c > *max_count)
			*max_count = c;
		const char *s;
		size_t l;
		if (msg && !msg[0] && kb_mp_str(ev, "message", &s, &l))
			snprintf(msg, msglen, "%.*s", (int)l, s);
		assert_true(kb_mp_streq(ev, "source.component", "kubelet"));
		assert_true(kb_mp_streq(ev, "source.host", NODE));
		assert_non_null(kb_mp_get(ev, "firstTimestamp"));
		assert_non_null(kb_mp_get(ev, "lastTimestamp"));
	}
	kb_msg_free(rep);
	return n;
}

/* A field of the first event of the pod with that reason; false when
 * there is none. */
static bool event_field(struct env *e, const char *pod, const char *reason,
    const char *path, char *buf, size_t len)
{
	kb_msg *rep = NULL;
	bool found = false;
	buf[0] = '\0';
	if (kb_api_list(e->c, &KB_GVR_EVENTS, "default", NULL, NULL, &rep) ==
	    0) {
		const msgpack_object *items =
		    kb_mp_get(kb_msg_body(rep), "items");
		for (uint32_t i = 0; !found && items &&
		     items->type == MSGPACK_OBJECT_ARRAY &&
		     i < items->via.array.size;
		     i++) {
			const msgpack_object *ev = &items->via.array.ptr[i];
			const char *s;
			size_t l;
			if (!kb_mp_streq(ev, "involvedObject.name", pod) ||
			    !kb_mp_streq(ev, "reason", reason) ||
			    !kb_mp_str(ev, path, &s, &l))
				continue;
			snprintf(buf, len, "%.*s", (int)l, s);
			found = true;
		}
	}
	kb_msg_free(rep);
	return found;
}

static bool wait_event(struct env *e, const char *pod, const char *reason,
    char *msg, size_t msglen)
{
	int64_t c;
	for (int waited = 0; waited < WAIT_MS; waited += 100) {
		if (events_of(e, pod, reason, &c, msg, msglen) > 0)
			return true;
		sleep_ms(100);
	}
	return false;
}

static void touch(struct env *e, const char *name, bool on)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", e->tmp, name);
	if (on) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	} else {
		unlink(path);
	}
}

/* --- probes ----------------------------------------------------------------------- */

static void test_readiness_exec(void **state)
{
	struct env *e = *state;
	if (!have_kubectl())
		skip();
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: rp}\n"
	    "spec:\n  nodeName: " NODE "\n  terminationGracePeriodSeconds: 0\n"
	    "  containers:\n  - name: main\n    image: pause\n"
	    "    readinessProbe:\n      exec: {command: [cat, %s/ready]}\n"
	    "      periodSeconds: 1\n      failureThreshold: 1\n",
	    e->tmp);
	apply(e, "rp", yaml);
	assert_true(wait_pod(e, "rp", is_running, NULL, WAIT_MS));
	/* Failing: Running but never Ready. */
	for (int i = 0; i < 25; i++) {
		kb_msg *m = get_pod(e, "rp");
		assert_non_null(m);
		assert_true(not_ready(kb_msg_body(m), NULL));
		kb_msg_free(m);
		sleep_ms(100);
	}
	char msg[512];
	assert_true(wait_event(e, "rp", "Unhealthy", msg, sizeof(msg)));
	assert_non_null(strstr(msg, "Readiness probe failed: cat: can't open"));
	/* Passing: Ready. */
	touch(e, "ready", true);
	assert_true(wait_pod(e, "rp", is_ready, NULL, 5000));
	kb_msg *m = get_pod(e, "rp");
	bool r = false;
	assert_true(kb_mp_bool(kb_msg_body(m),
	    "status.containerStatuses[0].ready", &r));
	assert_true(r);
	kb_msg_free(m);
	/* Failing again: not Ready, the container keeps running. */
	touch(e, "ready", false);
	assert_true(wait_pod(e, "rp", not_ready, NULL, 5000));
	assert_int_equal(restarts(e, "rp"), 0);
	kubectl(e, NULL, "delete pod rp --wait=false");
}

static void test_liveness_restarts(void **state)
{
	struct env *e = *state;
	if (!have_kubectl())
		skip();
	apply(e, "lp",
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: lp}\n"
	    "spec:\n  nodeName: " NODE "\n  terminationGracePeriodSeconds: 1\n"
	    "  containers:\n  - name: main\n    image: pause\n"
	    "    livenessProbe:\n      exec: {command: [\"false\"]}\n"
	    "      periodSeconds: 1\n      failureThreshold: 1\n");
	int three = 3;
	assert_true(wait_pod(e, "lp", restarts_at_least, &three, 20000));
	/* The killed run is the last state: SIGTERM, as the kubelet stops. */
	kb_msg *m = get_pod(e, "lp");
	int64_t code = 0;
	assert_true(kb_mp_int(kb_msg_body(m),
	    "status.containerStatuses[0].lastState.terminated.exitCode",
	    &code));
	assert_int_equal(code, 143);
	kb_msg_free(m);
	/* Events: one object per kind of event, repeats counted. */
	int64_t count = 0;
	char msg[512];
	for (int waited = 0; waited < 5000; waited += 100) {
		events_of(e, "lp", "Killing", &count, NULL, 0);
		if (count >= 2)
			break;
		sleep_ms(100);
	}
	assert_int_equal(events_of(e, "lp", "Killing", &count, msg,
			     sizeof(msg)),
	    1);
	assert_true(count >= 2);
	assert_string_equal(msg,
	    "Container main failed liveness probe, will be restarted");
	assert_int_equal(events_of(e, "lp", "Unhealthy", &count, msg,
			     sizeof(msg)),
	    1);
	assert_string_equal(msg,
	    "Liveness probe failed: command false exited with 1");
	assert_true(
	    events_of(e, "lp", "Started", &count, NULL, 0) == 1 && count >= 2);
	/* describe shows them. */
	char *out = NULL;
	assert_int_equal(kubectl(e, &out, "describe pod lp"), 0);
	assert_non_null(strstr(out, "Liveness probe failed"));
	assert_non_null(strstr(out, "Killing"));
	assert_non_null(strstr(out, "kubelet"));
	free(out);
	kubectl(e, NULL, "delete pod lp --wait=false");
}

static void test_startup_gates_liveness(void **state)
{
	struct env *e = *state;
	if (!have_kubectl())
		skip();
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: sp}\n"
	    "spec:\n  nodeName: " NODE "\n  terminationGracePeriodSeconds: 0\n"
	    "  containers:\n  - name: main\n    image: pause\n"
	    "    startupProbe:\n      exec: {command: [cat, %s/started]}\n"
	    "      periodSeconds: 1\n      failureThreshold: 60\n"
	    "    livenessProbe:\n      exec: {command: [\"false\"]}\n"
	    "      periodSeconds: 1\n      failureThreshold: 1\n",
	    e->tmp);
	apply(e, "sp", yaml);
	assert_true(wait_pod(e, "sp", is_running, NULL, WAIT_MS));
	/* Not started: liveness does not run, nothing restarts. */
	sleep_ms(2500);
	kb_msg *m = get_pod(e, "sp");
	bool started = true, ready = true;
	assert_true(kb_mp_bool(kb_msg_body(m),
	    "status.containerStatuses[0].started", &started));
	assert_true(kb_mp_bool(kb_msg_body(m),
	    "status.containerStatuses[0].ready", &ready));
	assert_false(started);
	assert_false(ready);
	kb_msg_free(m);
	assert_int_equal(restarts(e, "sp"), 0);
	/* Started: now liveness fails and restarts it. */
	touch(e, "started", true);
	int one = 1;
	assert_true(wait_pod(e, "sp", restarts_at_least, &one, 10000));
	touch(e, "started", false);
	kubectl(e, NULL, "delete pod sp --wait=false");
}

static void test_http_tcp_probes(void **state)
{
	struct env *e = *state;
	if (!have_kubectl())
		skip();
	char yaml[4096];
	const char *const kinds[][2] = {
		{ "hok",
		    "httpGet: {path: /healthz, port: %d, httpHeaders: [{name: X-Probe, value: kubus}]}" },
		{ "hmoved", "httpGet: {path: /moved, port: %d}" },
		{ "hbad", "httpGet: {path: /bad, port: %d}" },
		{ "tok", "tcpSocket: {port: %d}" },
		{ "tbad", "tcpSocket: {port: %d}" },
	};
	int dead = closed_port();
	for (size_t i = 0; i < 5; i++) {
		char handler[256];
		snprintf(handler, sizeof(handler), kinds[i][1],
		    i == 4 ? dead : e->http.port);
		snprintf(yaml, sizeof(yaml),
		    "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\n"
		    "spec:\n  nodeName: " NODE "\n  hostNetwork: true\n"
		    "  terminationGracePeriodSeconds: 0\n"
		    "  containers:\n  - name: main\n    image: pause\n"
		    "    readinessProbe:\n      %s\n"
		    "      periodSeconds: 1\n      failureThreshold: 1\n",
		    kinds[i][0], handler);
		apply(e, kinds[i][0], yaml);
	}
	/* HTTPS: the API server's own /healthz (a self-signed certificate,
	 * not verified, as Kubernetes). */
	char kc[1024];
	snprintf(kc, sizeof(kc), "%s/admin.kubeconfig",
	    kbt_host_data_dir(e->h));
	char *text = kbt_slurp(kc);
	assert_non_null(text);
	char *srv = strstr(text, "https://127.0.0.1:");
	assert_non_null(srv);
	int api_port = atoi(srv + strlen("https://127.0.0.1:"));
	free(text);
	assert_true(api_port > 0);
	snprintf(yaml, sizeof(yaml),
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: htls}\n"
	    "spec:\n  nodeName: " NODE "\n  hostNetwork: true\n"
	    "  terminationGracePeriodSeconds: 0\n"
	    "  containers:\n  - name: main\n    image: pause\n"
	    "    ports: [{name: api, containerPort: %d}]\n"
	    "    readinessProbe:\n      httpGet: {scheme: HTTPS, path: /healthz, port: api}\n"
	    "      periodSeconds: 1\n      failureThreshold: 1\n",
	    api_port);
	apply(e, "htls", yaml);
	assert_true(wait_pod(e, "hok", is_ready, NULL, WAIT_MS));
	assert_true(wait_pod(e, "htls", is_ready, NULL, WAIT_MS));
	assert_true(wait_pod(e, "hmoved", is_ready, NULL, WAIT_MS));
	assert_true(wait_pod(e, "tok", is_ready, NULL, WAIT_MS));
	assert_true(wait_pod(e, "hbad", not_ready, NULL, WAIT_MS));
	assert_true(wait_pod(e, "tbad", not_ready, NULL, WAIT_MS));
	char msg[512];
	assert_true(wait_event(e, "hbad", "Unhealthy", msg, sizeof(msg)));
	assert_string_equal(msg,
	    "Readiness probe failed: HTTP probe failed with statuscode: 500");
	assert_true(wait_event(e, "tbad", "Unhealthy", msg, sizeof(msg)));
	assert_non_null(strstr(msg, "connect: Connection refused"));
	/* Still not ready a while later. */
	sleep_ms(1200);
	kb_msg *m = get_pod(e, "hbad");
	assert_true(not_ready(kb_msg_body(m), NULL));
	kb_msg_free(m);
	pthread_mutex_lock(&e->http.mu);
	assert_non_null(strstr(e->http.seen, "GET /healthz HTTP/1.1"));
	assert_non_null(strstr(e->http.seen, "User-Agent: kube-probe/"));
	assert_non_null(strstr(e->http.seen, "X-Probe: kubus"));
	pthread_mutex_unlock(&e->http.mu);
	kubectl(e, NULL,
	    "delete pod hok hmoved hbad tok tbad htls --wait=false");
}

/* --- logs -f -------------------------------------------------------------------------- */

static void log_append(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fprintf(f, "2026-01-02T03:04:05.000000000Z stdout F %s\n", text);
	fclose(f);
}

static pid_t spawn_kubectl(struct env *e, const char *args, const char *out)
{
	char *cmd;
	if (asprintf(&cmd, "exec env %s %s", e->kubectl, args) < 0)
		return -1;
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	pid_t pid = kbt_spawn(argv, out);
	free(cmd);
	return pid;
}

static void test_logs_follow(void **state)
{
	struct env *e = *state;
	if (!have_kubectl())
		skip();
	apply(e, "lf",
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: lf}\n"
	    "spec:\n  nodeName: " NODE "\n  terminationGracePeriodSeconds: 0\n"
	    "  containers:\n  - name: main\n    image: pause\n");
	assert_true(wait_pod(e, "lf", is_running, NULL, WAIT_MS));
	kb_msg *m = get_pod(e, "lf");
	char *uid = kb_mp_strdup(kb_msg_body(m), "metadata.uid");
	kb_msg_free(m);
	char path[1024], out[1024];
	snprintf(path, sizeof(path),
	    "%s/kubelet/" NODE "/logs/default_lf_%s/main/0.log",
	    kbt_host_data_dir(e->h), uid);
	free(uid);
	snprintf(out, sizeof(out), "%s/lf.out", e->tmp);
	pid_t pid = spawn_kubectl(e, "logs -f lf", out);
	assert_true(pid > 0);
	char *got = kbt_wait_file(out, "attempt 0 started", WAIT_MS);
	if (got == NULL) {
		char *o = kbt_slurp(out);
		fail_msg("kubectl logs -f printed: %s", o ? o : "(nothing)");
	}
	free(got);
	/* Lines appear as they are appended, a half-written one when done. */
	log_append(path, "first appended line");
	got = kbt_wait_file(out, "first appended line", 5000);
	assert_non_null(got);
	free(got);
	FILE *f = fopen(path, "a");
	fputs("2026-01-02T03:04:05.000000000Z stdout F half", f);
	fflush(f);
	sleep_ms(400);
	got = kbt_slurp(out);
	assert_null(strstr(got, "half"));
	free(got);
	fputs(" and whole\n", f);
	fclose(f);
	got = kbt_wait_file(out, "half and whole", 5000);
	assert_non_null(got);
	free(got);
	assert_int_equal(kbt_wait_pid(pid, 300), -1); /* still following */
	/* Rotation (container_log_max_size 2Ki): the follow goes on in the
	 * new file, nothing lost or repeated; a plain read shows both. */
	f = fopen(path, "a");
	for (int i = 0; i < 60; i++)
		fprintf(f,
		    "2026-01-02T03:04:05.000000000Z stdout F bulk %02d\n", i);
	fclose(f);
	got = kbt_wait_file(out, "bulk 59", 5000);
	assert_non_null(got);
	free(got);
	char rotated[1100];
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	for (int waited = 0; waited < 5000 && access(rotated, F_OK) != 0;
	     waited += 100)
		sleep_ms(100);
	assert_int_equal(access(rotated, F_OK), 0);
	log_append(path, "after rotation");
	got = kbt_wait_file(out, "after rotation", 5000);
	assert_non_null(got);
	for (int i = 0; i < 60; i++) {
		char want[32];
		snprintf(want, sizeof(want), "bulk %02d\n", i);
		char *at = strstr(got, want);
		assert_non_null(at);
		assert_null(strstr(at + 1, want));
	}
	free(got);
	char *plain = NULL;
	assert_int_equal(kubectl(e, &plain, "logs lf"), 0);
	assert_non_null(strstr(plain, "bulk 00\nbulk 01\n"));
	assert_non_null(strstr(plain, "bulk 59\nafter rotation\n"));
	free(plain);
	/* The pod goes: the stream ends, kubectl exits 0. */
	kubectl(e, NULL, "delete pod lf --wait=false");
	int st = kbt_wait_pid(pid, 10000);
	if (st == -1)
		kbt_kill(pid);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_logs_follow_restarts(void **state)
{
	struct env *e = *state;
	if (!have_kubectl())
		skip();
	apply(e, "lc",
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: lc}\n"
	    "spec:\n  nodeName: " NODE "\n  terminationGracePeriodSeconds: 0\n"
	    "  containers:\n  - name: main\n    image: crashy\n");
	assert_true(wait_pod(e, "lc", is_running, NULL, WAIT_MS));
	char out[1024];
	snprintf(out, sizeof(out), "%s/lc.out", e->tmp);
	pid_t pid = spawn_kubectl(e, "logs -f lc -c main", out);
	assert_true(pid > 0);
	/* One stream over attempts 0, 1 and 2. */
	char *got = kbt_wait_file(out, "attempt 2 started", 20000);
	assert_non_null(got);
	assert_non_null(strstr(got, "attempt 0 started"));
	assert_non_null(strstr(got, "attempt 1 started"));
	assert_non_null(strstr(got, "crash soon"));
	assert_non_null(strstr(got, "fake: exiting with code 1"));
	free(got);
	assert_int_equal(kbt_wait_pid(pid, 100), -1);
	kbt_kill(pid);

	/* The other flags, as kubectl sends them. */
	char *o = NULL;
	assert_int_equal(kubectl(e, &o, "logs lc --previous"), 0);
	assert_non_null(strstr(o, "started"));
	assert_non_null(strstr(o, "exiting with code 1"));
	free(o);
	assert_int_equal(kubectl(e, &o, "logs lc --previous --tail=1"), 0);
	assert_string_equal(o, "fake: exiting with code 1\n");
	free(o);
	assert_int_equal(kubectl(e, &o,
			     "logs lc --previous --tail=1 --timestamps"),
	    0);
	assert_true(strlen(o) > 30 && o[4] == '-' && o[10] == 'T');
	assert_non_null(strstr(o, "Z fake: exiting with code 1\n"));
	free(o);
	assert_int_equal(kubectl(e, &o, "logs lc --previous --limit-bytes=5"),
	    0);
	assert_string_equal(o, "fake:");
	free(o);
	assert_int_equal(kubectl(e, &o, "logs lc --since=1h --previous"), 0);
	assert_non_null(strstr(o, "exiting"));
	free(o);
	assert_int_equal(
	    kubectl(e, &o,
		"logs lc --previous --since-time=2000-01-01T00:00:00Z"),
	    0);
	assert_non_null(strstr(o, "exiting"));
	free(o);
	assert_int_not_equal(kubectl(e, &o, "logs lc -c nope"), 0);
	assert_non_null(strstr(o, "nope"));
	free(o);
	kubectl(e, NULL, "delete pod lc --wait=false");
}

/* The follow protocol itself, over the bus: cursors, done, bad input. */
static void test_log_cursor_bus(void **state)
{
	struct env *e = *state;
	if (!have_kubectl())
		skip();
	apply(e, "lb",
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: lb}\n"
	    "spec:\n  nodeName: " NODE "\n  restartPolicy: Never\n"
	    "  terminationGracePeriodSeconds: 0\n"
	    "  containers:\n  - name: main\n    image: complete\n");
	kb_msg *rep = NULL;
	int rc = -1;
	for (int waited = 0; waited < WAIT_MS; waited += 100) {
		kb_msg_free(rep);
		rep = NULL;
		rc = kb_call(e->c, "kubelet/" NODE, "log",
		    kb_mp_body("{s:s, s:s, s:b}", "namespace", "default", "pod",
			"lb", "follow", 1),
		    5000, &rep);
		bool done = false;
		if (rc == 0 && kb_mp_bool(kb_msg_body(rep), "done", &done) &&
		    done)
			break;
		sleep_ms(100);
	}
	assert_int_equal(rc, 0);
	const msgpack_object *b = kb_msg_body(rep);
	uint64_t attempt = 9, offset = 0;
	assert_true(kb_mp_uint(b, "cursor.attempt", &attempt));
	assert_true(kb_mp_uint(b, "cursor.offset", &offset));
	assert_int_equal(attempt, 0);
	assert_true(offset > 0);
	const char *t;
	size_t n;
	assert_true(kb_mp_str(b, "text", &t, &n));
	assert_non_null(memmem(t, n, "exiting with code 0", 19));
	kb_msg_free(rep);
	/* From the cursor on: nothing more, done. */
	rep = NULL;
	assert_int_equal(kb_call(e->c, "kubelet/" NODE, "log",
			     kb_mp_body("{s:s, s:s, s:{s:u, s:u}}", "namespace",
				 "default", "pod", "lb", "cursor", "attempt",
				 (uint64_t)0, "offset", offset),
			     5000, &rep),
	    0);
	bool done = false;
	assert_true(kb_mp_str(kb_msg_body(rep), "text", &t, &n));
	assert_int_equal(n, 0);
	assert_true(kb_mp_bool(kb_msg_body(rep), "done", &done) && done);
	kb_msg_free(rep);
	/* Bad cursors: a clear error, no crash. */
	rep = NULL;
	assert_int_equal(kb_call(e->c, "kubelet/" NODE, "log",
			     kb_mp_body("{s:s, s:s, s:{s:s}}", "namespace",
				 "default", "pod", "lb", "cursor", "attempt",
				 "x"),
			     5000, &rep),
	    KB_EBADREQUEST);
	const char *m = "";
	kb_msg_err(rep, &m);
	assert_non_null(strstr(m, "cursor"));
	kb_msg_free(rep);
	rep = NULL;
	/* An offset past the end (and no rotated file): empty, not an error. */
	assert_int_equal(kb_call(e->c, "kubelet/" NODE, "log",
			     kb_mp_body("{s:s, s:s, s:{s:u, s:u}}", "namespace",
				 "default", "pod", "lb", "cursor", "attempt",
				 (uint64_t)7, "offset", (uint64_t)1 << 40),
			     5000, &rep),
	    0);
	kb_msg_free(rep);
	kubectl(e, NULL, "delete pod lb --wait=false");
}

/* --- events --------------------------------------------------------------------------- */

static void test_events(void **state)
{
	struct env *e = *state;
	if (!have_kubectl())
		skip();
	apply(e, "ev",
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: ev}\n"
	    "spec:\n  nodeName: " NODE "\n  terminationGracePeriodSeconds: 0\n"
	    "  containers:\n  - name: main\n    image: fail\n"
	    "  - name: gone\n    image: missing\n    imagePullPolicy: Never\n");
	char msg[512];
	assert_true(wait_event(e, "ev", "BackOff", msg, sizeof(msg)));
	assert_non_null(strstr(msg,
	    "Back-off restarting failed container main in pod ev_default("));
	assert_true(wait_event(e, "ev", "Pulled", msg, sizeof(msg)));
	assert_string_equal(msg,
	    "Container image \"fail\" already present on machine");
	assert_true(wait_event(e, "ev", "Created", msg, sizeof(msg)));
	assert_string_equal(msg, "Created container main");
	assert_true(wait_event(e, "ev", "Started", msg, sizeof(msg)));
	assert_string_equal(msg, "Started container main");
	/* Named <pod>.<hex>, about the container by its field path. */
	assert_true(event_field(e, "ev", "Started", "involvedObject.fieldPath",
	    msg, sizeof(msg)));
	assert_string_equal(msg, "spec.containers{main}");
	assert_true(event_field(e, "ev", "Started", "metadata.name", msg,
	    sizeof(msg)));
	assert_true(strlen(msg) > 3 && !strncmp(msg, "ev.", 3));
	assert_true(strspn(msg + 3, "0123456789abcdef") == strlen(msg + 3));
	assert_true(event_field(e, "ev", "Started", "type", msg, sizeof(msg)));
	assert_string_equal(msg, "Normal");
	assert_true(event_field(e, "ev", "Failed", "type", msg, sizeof(msg)));
	assert_string_equal(msg, "Warning");
	assert_true(wait_event(e, "ev", "ErrImageNeverPull", msg, sizeof(msg)));
	assert_string_equal(msg,
	    "Container image \"missing\" is not present with pull policy of Never");
	assert_true(wait_event(e, "ev", "Failed", msg, sizeof(msg)));
	assert_string_equal(msg, "Error: ErrImageNeverPull");
	/* Repeats are counted on one object, not new objects. */
	int64_t count = 0;
	for (int waited = 0; waited < 8000 && count < 2; waited += 100) {
		events_of(e, "ev", "Failed", &count, NULL, 0);
		sleep_ms(100);
	}
	assert_int_equal(events_of(e, "ev", "Failed", &count, NULL, 0), 1);
	assert_true(count >= 2);

	/* Rate limits: the missing image is reported on every sync (100 ms
	 * here, two events each): 4 s is some 80 reports, but one pod gets a
	 * burst of 25, then one per 10 s. */
	sleep_ms(4000);
	int64_t total = 0, c1 = 0, c2 = 0;
	events_of(e, "ev", "ErrImageNeverPull", &c1, NULL, 0);
	events_of(e, "ev", "Failed", &c2, NULL, 0);
	total = c1 + c2;
	int64_t all = 0;
	const char *reasons[] = { "Pulled", "Created", "Started", "BackOff",
		"ErrImageNeverPull", "Failed" };
	for (size_t i = 0; i < 6; i++) {
		int64_t c = 0;
		events_of(e, "ev", reasons[i], &c, NULL, 0);
		all += c;
	}
	printf("events of a flooding pod after ~6 s: image %lld, all %lld\n",
	    (long long)total, (long long)all);
	assert_true(total >= 4);
	assert_true(all <= 30);
	char *out = NULL;
	assert_int_equal(kubectl(e, &out, "get events"), 0);
	assert_non_null(strstr(out, "pod/ev"));
	assert_non_null(strstr(out, "BackOff"));
	assert_non_null(
	    strstr(out, "Back-off restarting failed container main"));
	free(out);
	assert_int_equal(kubectl(e, &out, "describe pod ev"), 0);
	assert_non_null(strstr(out, "Events:"));
	assert_non_null(strstr(out, "ErrImageNeverPull"));
	assert_non_null(strstr(out, "Started container main"));
	free(out);
	kubectl(e, NULL, "delete pod ev --wait=false");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readiness_exec),
		cmocka_unit_test(test_liveness_restarts),
		cmocka_unit_test(test_startup_gates_liveness),
		cmocka_unit_test(test_http_tcp_probes),
		cmocka_unit_test(test_logs_follow),
		cmocka_unit_test(test_logs_follow_restarts),
		cmocka_unit_test(test_log_cursor_bus),
		cmocka_unit_test(test_events),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

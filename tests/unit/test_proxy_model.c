/* tests/unit/test_proxy_model.c — what the service proxy decides, seen
 * through the proxy-record backend (no root, no rules): only ready
 * endpoints, targetPort by the slice's port name across slices, session
 * affinity, internal/externalTrafficPolicy Local, headless services left
 * out, the first sync full and later ones incremental with the changed
 * keys, and config errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

struct env {
	struct kbt_host *h;
	kb_ctx *c;
	char *dir;
	char file[512];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	e->dir = kbt_mkdtemp("pxmodel");
	snprintf(e->file, sizeof(e->file), "%s/state.txt", e->dir);
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {log_level: warn}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "  - name: proxy\n"
	    "    use: proxy\n"
	    "    config:\n"
	    "      backend: proxy-record\n"
	    "      backend_config: {file: %s}\n"
	    "      node_name: n1\n"
	    "      node_ip: 192.0.2.1\n"
	    "      route: false\n"
	    "      cleanup_others: false\n"
	    "      min_sync_period: 10ms\n",
	    e->file);
	e->h = kbt_host_start(yaml, err, sizeof(err));
	if (e->h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		kbt_rmrf(e->dir);
		free(e->dir);
		free(e);
		return -1;
	}
	const char *groups[] = { "kubus:plugins" };
	e->c = kbt_client(e->h, "tester", "plugin:tester", groups, 1);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	kbt_host_stop(e->h);
	kbt_rmrf(e->dir);
	free(e->dir);
	free(e);
	return 0;
}

static const char *msg_err(const kb_msg *m)
{
	const char *s = NULL;
	if (m)
		kb_msg_err(m, &s);
	return s ? s : "(no message)";
}

static void create(struct env *e, const struct kb_gvr *r, kb_body *b, char *cip,
    size_t ciplen)
{
	kb_msg *rep = NULL;
	assert_non_null(b);
	int rc = kb_api_create(e->c, r, "default", b, &rep);
	if (rc)
		fail_msg("create: %s", msg_err(rep));
	if (cip) {
		const char *ip;
		size_t n;
		assert_true(
		    kb_mp_str(kb_msg_body(rep), "spec.clusterIP", &ip, &n));
		snprintf(cip, ciplen, "%.*s", (int)n, ip);
	}
	kb_msg_free(rep);
}

/* Wait for the state file to hold `line` as a whole line. */
static void expect_line(struct env *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void expect_line(struct env *e, const char *fmt, ...)
{
	char line[1024], needle[1040];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	snprintf(needle, sizeof(needle), "\n%s\n", line);
	char *got = kbt_wait_file(e->file, needle, 10000);
	if (got == NULL) {
		char *s = kbt_slurp(e->file);
		fail_msg("want the line\n  %s\nin the recorded state:\n%s",
		    line, s ? s : "(no file)");
	}
	free(got);
}

static int64_t node_port(struct env *e, const char *name)
{
	kb_msg *rep = NULL;
	int64_t np = 0;
	assert_int_equal(kb_api_get(e->c, &KB_GVR_SERVICES, "default", name,
			     &rep),
	    0);
	assert_true(kb_mp_int(kb_msg_body(rep), "spec.ports[0].nodePort", &np));
	kb_msg_free(rep);
	return np;
}

/* A slice of service `svc` with one port (name, number) and endpoints
 * given as "ip node ready terminating" quads ("-" for an unset ready). */
static kb_body *slice(const char *name, const char *svc, const char *pname,
    int port, int n, const char *const eps[][4])
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		if (!strcmp(eps[i][2], "-"))
			kb_mp_pack(&pk, "{s:[s], s:s, s:{s:b}}", "addresses",
			    eps[i][0], "nodeName", eps[i][1], "conditions",
			    "terminating", !strcmp(eps[i][3], "1"));
		else
			kb_mp_pack(&pk, "{s:[s], s:s, s:{s:b, s:b}}",
			    "addresses", eps[i][0], "nodeName", eps[i][1],
			    "conditions", "ready", !strcmp(eps[i][2], "1"),
			    "terminating", !strcmp(eps[i][3], "1"));
	}
	kb_body *b =
	    kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}, s:s, s:[{s:s, s:i, s:s}], s:r}",
		"apiVersion", "discovery.k8s.io/v1", "kind", "EndpointSlice",
		"metadata", "name", name, "labels",
		"kubernetes.io/service-name", svc, "addressType", "IPv4",
		"ports", "name", pname, "port", port, "protocol", "TCP",
		"endpoints", sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

static void test_model(void **state)
{
	struct env *e = *state;
	char web[64], loc[64], np[64], npl[64], head[64];

	/* two named ports, ClientIP affinity; endpoints over two slices */
	create(e, &KB_GVR_SERVICES,
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:{s:s}, s:s, s:{s:{s:i}},"
		       " s:[{s:s, s:i, s:s}, {s:s, s:i, s:i}]}}",
		"apiVersion", "v1", "kind", "Service", "metadata", "name",
		"web", "spec", "selector", "app", "web", "sessionAffinity",
		"ClientIP", "sessionAffinityConfig", "clientIP",
		"timeoutSeconds", 60, "ports", "name", "http", "port", 80,
		"targetPort", "http", "name", "metrics", "port", 9090,
		"targetPort", 9100),
	    web, sizeof(web));
	static const char *const a[][4] = {
		{ "10.1.0.1", "n1", "1", "0" },
		{ "10.1.0.2", "n1", "0", "0" }, /* not ready */
		{ "10.1.0.3", "n2", "1", "1" }, /* terminating */
	};
	static const char *const b[][4] = {
		{ "10.1.0.4", "n2", "-", "0" }, /* ready unset: ready */
	};
	create(e, &KB_GVR_ENDPOINTSLICES,
	    slice("web-a", "web", "http", 8080, 3, a), NULL, 0);
	create(e, &KB_GVR_ENDPOINTSLICES,
	    slice("web-b", "web", "http", 8081, 1, b), NULL, 0);
	expect_line(e,
	    "default/web ip=%s affinity=1/60 http/6/80/0 eps=10.1.0.1:8080L,10.1.0.4:8081 node= metrics/6/9090/0 eps= node=",
	    web);

	/* traffic policies */
	static const char *const two[][4] = {
		{ "10.2.0.1", "n1", "1", "0" },
		{ "10.2.0.2", "n2", "1", "0" },
	};
	create(e, &KB_GVR_SERVICES,
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:s, s:[{s:s, s:i, s:i}]}}",
		"apiVersion", "v1", "kind", "Service", "metadata", "name",
		"local", "spec", "type", "NodePort", "internalTrafficPolicy",
		"Local", "externalTrafficPolicy", "Local", "ports", "name", "p",
		"port", 80, "targetPort", 80),
	    loc, sizeof(loc));
	create(e, &KB_GVR_SERVICES,
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:i, s:i}]}}",
		"apiVersion", "v1", "kind", "Service", "metadata", "name", "np",
		"spec", "type", "NodePort", "ports", "name", "p", "port", 80,
		"targetPort", 80),
	    np, sizeof(np));
	create(e, &KB_GVR_SERVICES,
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:[{s:s, s:i, s:i}]}}",
		"apiVersion", "v1", "kind", "Service", "metadata", "name",
		"npl", "spec", "type", "NodePort", "externalTrafficPolicy",
		"Local", "ports", "name", "p", "port", 80, "targetPort", 80),
	    npl, sizeof(npl));
	create(e, &KB_GVR_SERVICES,
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:i}]}}",
		"apiVersion", "v1", "kind", "Service", "metadata", "name",
		"head", "spec", "clusterIP", "None", "ports", "name", "p",
		"port", 80),
	    head, sizeof(head));
	assert_string_equal(head, "None");
	create(e, &KB_GVR_ENDPOINTSLICES,
	    slice("local-1", "local", "p", 8080, 2, two), NULL, 0);
	create(e, &KB_GVR_ENDPOINTSLICES,
	    slice("np-1", "np", "p", 8080, 2, two), NULL, 0);
	create(e, &KB_GVR_ENDPOINTSLICES,
	    slice("npl-1", "npl", "p", 8080, 2, two), NULL, 0);
	create(e, &KB_GVR_ENDPOINTSLICES,
	    slice("head-1", "head", "p", 8080, 2, two), NULL, 0);
	expect_line(e,
	    "default/local ip=%s affinity=0/10800 p/6/80/%lld eps=10.2.0.1:8080L node=same",
	    loc, (long long)node_port(e, "local"));
	expect_line(e,
	    "default/np ip=%s affinity=0/10800 p/6/80/%lld eps=10.2.0.1:8080L,10.2.0.2:8080 node=same",
	    np, (long long)node_port(e, "np"));
	expect_line(e,
	    "default/npl ip=%s affinity=0/10800 p/6/80/%lld eps=10.2.0.1:8080L,10.2.0.2:8080 node=10.2.0.1:8080L",
	    npl, (long long)node_port(e, "npl"));
	char *s = kbt_slurp(e->file);
	assert_non_null(s);
	assert_null(strstr(s, "default/head"));
	free(s);

	/* later syncs are incremental and name what changed: ep .2 of web
	 * turns ready, np goes away */
	static const char *const a2[][4] = {
		{ "10.1.0.1", "n1", "1", "0" },
		{ "10.1.0.2", "n1", "1", "0" },
	};
	kb_msg *rep = NULL;
	assert_int_equal(kb_api_patch(e->c, &KB_GVR_ENDPOINTSLICES, "default",
			     "web-a", NULL, "merge",
			     slice("web-a", "web", "http", 8080, 2, a2), &rep),
	    0);
	kb_msg_free(rep);
	expect_line(e,
	    "default/web ip=%s affinity=1/60 http/6/80/0 eps=10.1.0.1:8080L,10.1.0.2:8080L,10.1.0.4:8081 node= metrics/6/9090/0 eps= node=",
	    web);
	s = kbt_slurp(e->file);
	assert_non_null(s);
	assert_non_null(strstr(s, "full=0 changed=default/web "));
	free(s);
	assert_int_equal(kb_api_delete(e->c, &KB_GVR_SERVICES, "default", "np",
			     NULL, NULL),
	    0);
	char *got = kbt_wait_file(e->file, "changed=default/np ", 10000);
	assert_non_null(got);
	assert_null(strstr(got, "\ndefault/np "));
	assert_non_null(strstr(got, "\ndefault/npl "));
	free(got);
}

/* Bad config gets one clear line, never a crash. */
static void test_bad_config(void **state)
{
	(void)state;
	static const char *const bad[][2] = {
		{ "service_cidr: 10.96.0.0", "service_cidr" },
		{ "service_cidr: 300.1.0.0/12", "service_cidr" },
		{ "node_ip: not-an-ip", "node_ip" },
		{ "backend: proxy-nosuch", "proxy-nosuch" },
		{ "min_sync_period: soon", "min_sync_period" },
		{ "bogus: 1", "bogus" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char yaml[1024], err[1024] = "";
		snprintf(yaml, sizeof(yaml),
		    "host: {log_level: error}\n"
		    "bus: {listen: []}\n"
		    "plugins:\n"
		    "  - name: proxy\n"
		    "    use: proxy\n"
		    "    config: {route: false, cleanup_others: false, %s}\n",
		    bad[i][0]);
		struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
		if (h) {
			kbt_host_stop(h);
			fail_msg("config `%s` was accepted", bad[i][0]);
		}
		if (strstr(err, bad[i][1]) == NULL)
			fail_msg("config `%s`: the error does not name `%s`: %s",
			    bad[i][0], bad[i][1], err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model, setup, teardown),
		cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/api_bind_util.h — what the binding tests (test_api_bind.c on
 * the stored bytes, test_api_bindrv.c on the watch cache's) share: a JSON
 * literal parsed, the host and the tester's client, the `api` service's
 * binding call and the caller's groups, and an error reply checked.
 * Header-only; include after cmocka.h, harness.h, api.h and kubus/client.h.
 */
#ifndef KUBUS_TESTS_API_BIND_UTIL_H
#define KUBUS_TESTS_API_BIND_UTIL_H

static inline json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	if (j == NULL)
		fail_msg("%s: %s", text, err.text);
	return j;
}

/* The caller's groups: a frontend plugin with the masters' rights. */
static const char *const groups[] = { "kubus:plugins", "kubus:kind:frontend",
	"system:masters" };

/* An API server on a plain loopback port and the tester's client on it
 * into *c. */
static inline struct kbt_host *bind_host(kb_ctx **c)
{
	char err[1024] = "";
	struct kbt_host *h = kbt_api_host_start("plain_http: true, listen: \"127.0.0.1:0\"", err,
	    sizeof err);
	if (h == NULL)
		fail_msg("host: %s", err);
	*c = kbt_client(h, "tester", "plugin:tester", groups, 3);
	assert_non_null(*c);
	return h;
}

/* pods/NAME/binding of NAME in "default" to NODE over the `api` service. */
static inline int bind_call(kb_ctx *c, const char *name, const char *node, kb_msg **rep)
{
	return kb_call(c, "api", "create",
	    kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:{s:s}, s:{s:s, s:s, s:s}}}",
		"group", "", "version", "v1", "resource", "pods", "namespace", "default",
		"name", name, "subresource", "binding", "object", "apiVersion", "v1",
		"kind", "Binding", "metadata", "name", name, "target", "apiVersion", "v1",
		"kind", "Node", "name", node),
	    10000, rep);
}

/* A call that must succeed: else the test fails saying what and why. */
static inline void expect_ok(int rc, kb_msg *rep, const char *what)
{
	if (rc == 0)
		return;
	const char *m = "";
	if (rep)
		kb_msg_err(rep, &m);
	fail_msg("%s: %s %s", what, kb_strerror(rc), m);
}

/* The call's error and Status message. */
static inline void expect_err(int rc, kb_msg *rep, int want, const char *msg)
{
	const char *m = "";
	assert_int_equal(rc, want);
	assert_non_null(rep);
	kb_msg_err(rep, &m);
	assert_string_equal(m, msg);
	kb_msg_free(rep);
}

#endif

/* tests/unit/test_api_util.c — the API server's Status errors and small
 * utilities (plugins/apiserver/util.c): the exact texts kubectl prints,
 * RFC 3339 time, UUIDs, DNS-1123 names, dotted paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"

static void assert_json_text(const json_t *j, const char *want)
{
	char *t = json_dumps(j, JSON_COMPACT);
	assert_non_null(t);
	if (strcmp(t, want) != 0)
		fail_msg("got  %s\nwant %s", t, want);
	free(t);
}

static void assert_status(const struct api_error *e, const char *want)
{
	json_t *s = api_status(e);
	assert_non_null(s);
	assert_json_text(s, want);
	json_decref(s);
}

static bool matches(const char *s, const char *re)
{
	regex_t r;
	int rc;
	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&r, s, 0, NULL, 0);
	regfree(&r);
	return rc == 0;
}

/* --- errors ------------------------------------------------------------------ */

static void test_not_found(void **state)
{
	(void)state;
	struct api_error e = { 0 };
	api_err(&e, 404, "NotFound", "pods \"%s\" not found", "nosuch");
	snprintf(e.kind, sizeof e.kind, "pods");
	snprintf(e.name, sizeof e.name, "nosuch");
	/* the shape KUBECTL.md shows, field for field */
	assert_status(&e,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods "
	    "\\\"nosuch\\\" not found\",\"reason\":\"NotFound\",\"details\":"
	    "{\"name\":\"nosuch\",\"kind\":\"pods\"},\"code\":404}");
	api_err_clear(&e);
	/* a group-qualified resource splits into kind and group */
	api_err(&e, 404, "NotFound", "deployments.apps \"web\" not found");
	snprintf(e.kind, sizeof e.kind, "deployments.apps");
	snprintf(e.name, sizeof e.name, "web");
	assert_status(&e,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Failure\",\"message\":"
	    "\"deployments.apps \\\"web\\\" not found\",\"reason\":\"NotFound\","
	    "\"details\":{\"name\":\"web\",\"group\":\"apps\",\"kind\":"
	    "\"deployments\"},\"code\":404}");
	api_err_clear(&e);
	/* no details at all when there is nothing to say */
	api_err(&e, 400, "BadRequest", "bad");
	assert_status(&e,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Failure\",\"message\":\"bad\","
	    "\"reason\":\"BadRequest\",\"code\":400}");
	api_err_clear(&e);
	/* an unset error still gives a well-formed 500 */
	assert_status(&e,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Failure\",\"message\":\"Internal "
	    "error occurred: unknown error\",\"reason\":\"InternalError\","
	    "\"code\":500}");
}

static void test_invalid_one(void **state)
{
	(void)state;
	struct api_error e = { 0 };
	api_err_cause(&e, "FieldValueInvalid", "spec.replicas",
	    "Invalid value: %d: must be greater than or equal to 0", -1);
	assert_int_equal(e.code, 422);
	assert_string_equal(e.reason, "Invalid");
	api_err_invalid(&e, "Deployment.apps", "web");
	assert_string_equal(e.message,
	    "Deployment.apps \"web\" is invalid: "
	    "spec.replicas: Invalid value: -1: must be greater than or equal "
	    "to 0");
	assert_status(&e,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Failure\",\"message\":"
	    "\"Deployment.apps \\\"web\\\" is invalid: spec.replicas: Invalid "
	    "value: -1: must be greater than or equal to 0\",\"reason\":"
	    "\"Invalid\",\"details\":{\"name\":\"web\",\"group\":\"apps\","
	    "\"kind\":\"Deployment\",\"causes\":[{\"reason\":"
	    "\"FieldValueInvalid\",\"message\":\"Invalid value: -1: must be "
	    "greater than or equal to 0\",\"field\":\"spec.replicas\"}]},"
	    "\"code\":422}");
	api_err_clear(&e);
	assert_null(e.causes);
	assert_int_equal(e.code, 0);
}

static void test_invalid_many(void **state)
{
	(void)state;
	struct api_error e = { 0 };
	api_err_cause(&e, "FieldValueInvalid", "metadata.name",
	    "Invalid value: \"%s\": %s", "Web_1",
	    api_dns1123_subdomain("Web_1"));
	api_err_cause(&e, "FieldValueRequired", "spec.containers[0].image",
	    "Required value");
	/* the same error twice is said once, as Kubernetes' aggregate does */
	api_err_cause(&e, "FieldValueRequired", "spec.containers[0].image",
	    "Required value");
	api_err_invalid(&e, "Pod", "Web_1");
	assert_string_equal(e.message,
	    "Pod \"Web_1\" is invalid: "
	    "[metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 "
	    "subdomain must consist of lower case alphanumeric characters, '-' "
	    "or '.', and must start and end with an alphanumeric character "
	    "(e.g. 'example.com', regex used for validation is "
	    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), "
	    "spec.containers[0].image: Required value]");
	assert_int_equal(json_array_size(e.causes), 3);
	json_t *s = api_status(&e);
	assert_string_equal(json_string_value(
				json_object_get(json_object_get(s, "details"),
				    "kind")),
	    "Pod");
	assert_null(json_object_get(json_object_get(s, "details"), "group"));
	assert_int_equal(json_array_size(
			     json_object_get(json_object_get(s, "details"),
				 "causes")),
	    3);
	json_decref(s);
	api_err_clear(&e);
	/* no causes: no colon */
	api_err_invalid(&e, "ConfigMap", "x");
	assert_string_equal(e.message, "ConfigMap \"x\" is invalid");
	api_err_clear(&e);
	/* a cause without a field prints its message alone */
	api_err_cause(&e, "FieldValueForbidden", NULL, "Forbidden: nope");
	api_err_invalid(&e, "Pod", "p");
	assert_string_equal(e.message, "Pod \"p\" is invalid: Forbidden: nope");
	api_err_clear(&e);
	/* a code already set is kept by api_err_cause */
	api_err(&e, 400, "BadRequest", "x");
	api_err_cause(&e, "FieldValueInvalid", "a", "b");
	assert_int_equal(e.code, 400);
	api_err_clear(&e);
}

static void test_invalid_long_and_odd(void **state)
{
	(void)state;
	struct api_error e = { 0 };
	char big[3000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	for (int i = 0; i < 40; i++)
		api_err_cause(&e, "FieldValueInvalid", "spec.x",
		    "Invalid value: %d: %.*s\xc3\xa9", i, 20 + i, big);
	/* a name with quotes, control bytes and invalid UTF-8 is quoted as
	 * Go's %q would, and every JSON string stays valid */
	api_err_invalid(&e, "Pod", "a\"b\n\xff\xc3\xa9");
	assert_true(strncmp(e.message,
			"Pod \"a\\\"b\\n\\xff\xc3\xa9\" is "
			"invalid: [spec.x:",
			33) == 0);
	assert_true(strlen(e.message) < sizeof e.message);
	json_t *s = api_status(&e);
	assert_non_null(s);
	assert_non_null(json_object_get(s, "message"));
	assert_non_null(json_object_get(json_object_get(s, "details"), "name"));
	char *t = json_dumps(s, 0);
	assert_non_null(t);
	free(t);
	json_decref(s);
	api_err_clear(&e);
	/* a message cut in the middle of a UTF-8 sequence is cut before it */
	char msg[1100];
	memset(msg, 'a', 1022);
	strcpy(msg + 1022, "\xe2\x82\xac");
	api_err(&e, 400, "BadRequest", "%s", msg);
	assert_int_equal(strlen(e.message), 1022);
	s = api_status(&e);
	assert_non_null(json_object_get(s, "message"));
	json_decref(s);
	api_err_clear(&e);
}

static void test_status_success(void **state)
{
	(void)state;
	json_t *s = api_status_success("deployments.apps", "web");
	assert_json_text(s,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Success\",\"details\":{\"name\":"
	    "\"web\",\"group\":\"apps\",\"kind\":\"deployments\"}}");
	json_decref(s);
	s = api_status_success(NULL, NULL);
	assert_json_text(s,
	    "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Success\"}");
	json_decref(s);
}

static void test_from_kb(void **state)
{
	(void)state;
	struct api_error e = { 0 };
	/* a message from the bus or the store is said as it is */
	api_err_from_kb(&e, KB_ENOTFOUND, "pods \"x\" not found");
	assert_int_equal(e.code, 404);
	assert_string_equal(e.reason, "NotFound");
	assert_string_equal(e.message, "pods \"x\" not found");
	api_err_clear(&e);

	/* without one, Kubernetes' words from kind and name */
	snprintf(e.kind, sizeof e.kind, "pods");
	snprintf(e.name, sizeof e.name, "x");
	api_err_from_kb(&e, KB_ENOTFOUND, NULL);
	assert_string_equal(e.message, "pods \"x\" not found");
	assert_string_equal(e.kind, "pods");
	api_err_clear(&e);

	/* the subject from kind and name already in e */
	snprintf(e.kind, sizeof e.kind, "deployments.apps");
	snprintf(e.name, sizeof e.name, "web");
	api_err_from_kb(&e, KB_ECONFLICT, NULL);
	assert_int_equal(e.code, 409);
	assert_string_equal(e.reason, "Conflict");
	assert_string_equal(e.message,
	    "Operation cannot be fulfilled on "
	    "deployments.apps \"web\": the object has been modified; please "
	    "apply your changes to the latest version and try again");
	api_err_clear(&e);

	snprintf(e.kind, sizeof e.kind, "namespaces");
	snprintf(e.name, sizeof e.name, "team-a");
	api_err_from_kb(&e, KB_EEXIST, NULL);
	assert_int_equal(e.code, 409);
	assert_string_equal(e.reason, "AlreadyExists");
	assert_string_equal(e.message, "namespaces \"team-a\" already exists");
	api_err_clear(&e);

	api_err_from_kb(&e, KB_EUNAUTHORIZED, NULL);
	assert_int_equal(e.code, 401);
	assert_string_equal(e.message, "Unauthorized");
	api_err_clear(&e);

	api_err_from_kb(&e, KB_ETOOMANY, NULL);
	assert_int_equal(e.code, 429);
	assert_string_equal(e.reason, "TooManyRequests");
	api_err_clear(&e);

	api_err_from_kb(&e, KB_EEXPIRED, "too old resource version: 5 (9)");
	assert_int_equal(e.code, 410);
	assert_string_equal(e.reason, "Expired");
	assert_string_equal(e.message, "too old resource version: 5 (9)");
	api_err_clear(&e);

	api_err_from_kb(&e, KB_ENOMEM, NULL);
	assert_int_equal(e.code, 500);
	assert_string_equal(e.reason, "InternalError");
	assert_string_equal(e.message,
	    "Internal error occurred: out of memory");
	api_err_clear(&e);

	api_err_from_kb(&e, KB_ENOTFOUND, NULL);
	assert_string_equal(e.message,
	    "the server could not find the requested resource");
	api_err_clear(&e);

	api_err_from_kb(&e, KB_EUNAVAILABLE, "the store is not running");
	assert_int_equal(e.code, 503);
	assert_string_equal(e.reason, "ServiceUnavailable");
	assert_string_equal(e.message, "the store is not running");
	api_err_clear(&e);

	api_err_from_kb(&e, KB_ETIMEOUT, "the store did not answer in 5s");
	assert_int_equal(e.code, 504);
	assert_string_equal(e.message,
	    "Timeout: the store did not answer in 5s");
	api_err_clear(&e);

	api_err_from_kb(&e, KB_EINTERNAL, "disk full");
	assert_string_equal(e.message, "Internal error occurred: disk full");
	api_err_clear(&e);
}

/* --- time and identity -------------------------------------------------------- */

static void test_now(void **state)
{
	(void)state;
	char buf[64], small[8];
	struct tm tm = { 0 };
	api_now(buf, sizeof buf);
	assert_true(matches(buf,
	    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
	    "[0-9]{2}Z$"));
	assert_non_null(strptime(buf, "%Y-%m-%dT%H:%M:%SZ", &tm));
	time_t t = timegm(&tm);
	assert_true(t <= time(NULL) && t >= time(NULL) - 5);
	api_now(small, sizeof small);
	assert_string_equal(small, "");
	api_now(small, 0);
}

static void test_uuid(void **state)
{
	(void)state;
	char a[37], b[37], tiny[9];
	api_uuid(a, sizeof a);
	api_uuid(b, sizeof b);
	assert_true(matches(a,
	    "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
	    "[89ab][0-9a-f]{3}-[0-9a-f]{12}$"));
	assert_string_not_equal(a, b);
	api_uuid(tiny, sizeof tiny);
	assert_int_equal(strlen(tiny), 8);
}

/* --- DNS-1123 ------------------------------------------------------------------- */

static const char subdomain_msg[] =
    "a lowercase RFC 1123 subdomain must "
    "consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
static const char label_msg[] =
    "a lowercase RFC 1123 label must consist "
    "of lower case alphanumeric characters or '-', and must start and end "
    "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

static void test_dns1123(void **state)
{
	(void)state;
	const char *good_sub[] = { "a", "0", "web", "web-1", "a.b", "a-1.b-2.c",
		"example.com", "1.2.3", "a--b" };
	const char *bad_sub[] = { "", "A", "web_1", "-a", "a-", ".a", "a.",
		"a..b", "a.-b", "a b", "é", "a/b", "a.b-" };
	for (size_t i = 0; i < sizeof good_sub / sizeof good_sub[0]; i++)
		assert_null(api_dns1123_subdomain(good_sub[i]));
	for (size_t i = 0; i < sizeof bad_sub / sizeof bad_sub[0]; i++)
		assert_string_equal(api_dns1123_subdomain(bad_sub[i]),
		    subdomain_msg);
	assert_string_equal(api_dns1123_subdomain(NULL), subdomain_msg);

	char name[300];
	memset(name, 'a', sizeof name);
	name[253] = '\0';
	assert_null(api_dns1123_subdomain(name));
	name[253] = 'a';
	name[254] = '\0';
	assert_string_equal(api_dns1123_subdomain(name),
	    "must be no more than 253 characters");

	assert_null(api_dns1123_label("default"));
	assert_null(api_dns1123_label("kube-system"));
	assert_null(api_dns1123_label("123-abc"));
	assert_string_equal(api_dns1123_label("a.b"), "must not contain dots");
	assert_string_equal(api_dns1123_label("A"), label_msg);
	assert_string_equal(api_dns1123_label(""), label_msg);
	assert_string_equal(api_dns1123_label("a_b"), label_msg);
	assert_string_equal(api_dns1123_label("a..b"), label_msg);
	name[63] = '\0';
	assert_null(api_dns1123_label(name));
	name[63] = 'a';
	name[64] = '\0';
	assert_string_equal(api_dns1123_label(name),
	    "must be no more than 63 characters");
}

/* --- paths ---------------------------------------------------------------------- */

static void test_get(void **state)
{
	(void)state;
	json_t *o = json_loads(
	    "{\"metadata\":{\"name\":\"p\",\"labels\":"
	    "{\"app.kubernetes.io/name\":\"web\",\"a[b]\":\"c\",\"x\\\\y\":\"z\"}},"
	    "\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"c\":80},"
	    "{\"c\":443}]}]},\"m\":[[1,2],[3,4]]}",
	    0, NULL);
	assert_non_null(o);
	assert_string_equal(api_get_str(o, "metadata.name"), "p");
	assert_string_equal(api_get_str(o,
				"metadata.labels.app\\.kubernetes\\.io/name"),
	    "web");
	assert_string_equal(api_get_str(o, "metadata.labels.a\\[b]"), "c");
	assert_string_equal(api_get_str(o, "metadata.labels.x\\\\y"), "z");
	assert_string_equal(api_get_str(o, "spec.containers[0].name"), "a");
	assert_int_equal(json_integer_value(
			     api_get(o, "spec.containers[0].ports[1].c")),
	    443);
	assert_int_equal(json_integer_value(api_get(o, "m[1][0]")), 3);
	assert_ptr_equal(api_get(o, ""), o);
	assert_ptr_equal(api_get(o, NULL), o);
	assert_null(api_get(o, "metadata.nosuch"));
	assert_null(api_get(o, "spec.containers[1]"));
	assert_null(api_get(o, "spec.containers[-1]"));
	assert_null(api_get(o, "spec.containers[x]"));
	assert_null(api_get(o, "spec.containers[0"));
	assert_null(api_get(o, "spec.containers[99999999999999999999999]"));
	assert_null(api_get(o, "metadata[0]"));
	assert_null(api_get(o, "spec.containers.name"));
	assert_null(api_get_str(o, "spec"));
	assert_null(api_get(NULL, "a"));
	json_decref(o);
}

static void test_set(void **state)
{
	(void)state;
	json_t *o = json_object();
	assert_int_equal(api_set(o, "metadata.labels.app", json_string("web")),
	    0);
	assert_int_equal(api_set(o, "metadata.annotations.a\\.b/c",
			     json_string("x")),
	    0);
	assert_int_equal(api_set(o, "spec.replicas", json_integer(3)), 0);
	assert_int_equal(api_set(o, "spec.replicas", json_integer(4)), 0);
	/* arrays: an existing index, one past the end, created on the way */
	assert_int_equal(api_set(o, "spec.containers[0].name",
			     json_string("a")),
	    0);
	assert_int_equal(api_set(o, "spec.containers[0].image",
			     json_string("nginx")),
	    0);
	assert_int_equal(api_set(o, "spec.containers[1]",
			     json_pack("{s:s}", "name", "b")),
	    0);
	assert_int_equal(api_set(o, "spec.containers[1].name",
			     json_string("c")),
	    0);
	char *t = json_dumps(o, JSON_COMPACT);
	assert_string_equal(t,
	    "{\"metadata\":{\"labels\":{\"app\":\"web\"},"
	    "\"annotations\":{\"a.b/c\":\"x\"}},\"spec\":{\"replicas\":4,"
	    "\"containers\":[{\"name\":\"a\",\"image\":\"nginx\"},{\"name\":"
	    "\"c\"}]}}");
	free(t);
	/* failures take the value all the same (ASan checks for leaks) */
	assert_int_equal(api_set(o, "spec.containers[5]", json_string("x")),
	    KB_EINVAL);
	assert_int_equal(api_set(o, "spec.containers[5].name",
			     json_string("x")),
	    KB_EINVAL);
	assert_int_equal(api_set(o, "spec.replicas.x", json_string("x")),
	    KB_EINVAL);
	assert_int_equal(api_set(o, "spec[0]", json_string("x")), KB_EINVAL);
	assert_int_equal(api_set(o, "", json_string("x")), KB_EINVAL);
	assert_int_equal(api_set(o, "a[", json_string("x")), KB_EINVAL);
	assert_int_equal(api_set(o, "a", NULL), KB_EINVAL);
	/* an array created on the way, when the next step is an index */
	assert_int_equal(api_set(o, "spec.containers[0].ports[0].c",
			     json_integer(80)),
	    0);
	assert_int_equal(json_integer_value(
			     api_get(o, "spec.containers[0].ports[0].c")),
	    80);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_invalid_one),
		cmocka_unit_test(test_invalid_many),
		cmocka_unit_test(test_invalid_long_and_odd),
		cmocka_unit_test(test_status_success),
		cmocka_unit_test(test_from_kb),
		cmocka_unit_test(test_now),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_dns1123),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_api_select.c — label and field selectors
 * (plugins/apiserver/select.c): every label operator issue 4 names
 * (=, ==, !=, in, notin, exists, !key), the field selectors kubectl
 * sends, LabelSelector objects, and the 400s for what Kubernetes refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "server.h"

static json_t *obj(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	return j;
}

static const char pod_a[] =
    "{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns1\",\"labels\":{\"app\":\"web\",\"tier\":\"front\"}},"
    "\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"phase\":\"Running\"}}";
static const char pod_b[] =
    "{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns2\",\"labels\":{\"app\":\"db\"}},"
    "\"spec\":{},\"status\":{\"phase\":\"Pending\"}}";

/* Does the label selector `s` pick a, b: "ab", "a", "b" or "". */
static void labels_pick(const char *s, const char *want)
{
	struct api_error e = { 0 };
	struct api_selector *sel = api_label_selector(s, &e);
	if (sel == NULL)
		fail_msg("selector %s refused: %s", s, e.message);
	json_t *a = obj(pod_a), *b = obj(pod_b);
	char got[3] = "";
	size_t n = 0;
	if (api_selector_match(sel, a))
		got[n++] = 'a';
	if (api_selector_match(sel, b))
		got[n++] = 'b';
	if (strcmp(got, want))
		fail_msg("selector \"%s\" picked \"%s\", want \"%s\"", s, got, want);
	json_decref(a);
	json_decref(b);
	api_selector_free(sel);
}

static void test_label_operators(void **state)
{
	(void)state;
	labels_pick(NULL, "ab");
	labels_pick("", "ab");
	labels_pick("app=web", "a");
	labels_pick("app==web", "a");
	labels_pick("app!=web", "b");
	labels_pick("tier!=front", "b"); /* != matches a missing key */
	labels_pick("app in (web,db)", "ab");
	labels_pick("app in (db)", "b");
	labels_pick("app notin (web)", "b");
	labels_pick("tier notin (back)", "ab");
	labels_pick("tier", "a");
	labels_pick("!tier", "b");
	labels_pick("app=web,tier=front", "a");
	labels_pick("app=web,!tier", "");
	labels_pick(" app = db ", "b");
}

static void refused(struct api_selector *sel, struct api_error *e,
    const char *what)
{
	if (sel != NULL)
		fail_msg("%s: accepted", what);
	assert_int_equal(e->code, 400);
	assert_string_equal(e->reason, "BadRequest");
	api_err_clear(e);
}

static void test_label_malformed(void **state)
{
	struct api_error e = { 0 };
	(void)state;
	refused(api_label_selector("app in (", &e), &e, "app in (");
	refused(api_label_selector("app in web", &e), &e, "app in web");
	refused(api_label_selector("=web", &e), &e, "=web");
	refused(api_label_selector("Bad Key=x", &e), &e, "Bad Key=x");
}

static void test_fields(void **state)
{
	struct api_error e = { 0 };
	const struct api_resource *pods = api_resource_find("", "v1", "pods");
	const struct api_resource *cms = api_resource_find("", "v1", "configmaps");
	json_t *a = obj(pod_a), *b = obj(pod_b);
	(void)state;
	struct api_selector *s = api_field_selector(pods, "spec.nodeName=n1", &e);
	assert_non_null(s);
	assert_true(api_selector_match(s, a));
	assert_false(api_selector_match(s, b));
	api_selector_free(s);
	/* drain's "pods not on any node" and kubectl's name watches */
	s = api_field_selector(pods, "spec.nodeName=", &e);
	assert_non_null(s);
	assert_false(api_selector_match(s, a));
	assert_true(api_selector_match(s, b));
	api_selector_free(s);
	s = api_field_selector(pods, "metadata.name=b,metadata.namespace=ns2", &e);
	assert_non_null(s);
	assert_false(api_selector_match(s, a));
	assert_true(api_selector_match(s, b));
	api_selector_free(s);
	s = api_field_selector(pods, "status.phase!=Running", &e);
	assert_non_null(s);
	assert_false(api_selector_match(s, a));
	assert_true(api_selector_match(s, b));
	api_selector_free(s);
	refused(api_field_selector(cms, "spec.nodeName=n1", &e), &e,
	    "configmaps by spec.nodeName");
	json_decref(a);
	json_decref(b);
}

static void test_event_fields(void **state)
{
	struct api_error e = { 0 };
	const struct api_resource *ev = api_resource_find("", "v1", "events");
	json_t *o = obj("{\"metadata\":{\"name\":\"e1\",\"namespace\":\"d\"},"
			"\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"p\",\"namespace\":\"d\","
			"\"uid\":\"u-1\"},\"reason\":\"Scheduled\",\"type\":\"Normal\"}");
	(void)state;
	/* describe's query */
	struct api_selector *s = api_field_selector(ev,
	    "involvedObject.name=p,involvedObject.namespace=d,involvedObject.uid=u-1", &e);
	assert_non_null(s);
	assert_true(api_selector_match(s, o));
	api_selector_free(s);
	s = api_field_selector(ev, "type=Warning", &e);
	assert_non_null(s);
	assert_false(api_selector_match(s, o));
	api_selector_free(s);
	s = api_field_selector(ev, "reason=Scheduled,involvedObject.kind=Pod", &e);
	assert_non_null(s);
	assert_true(api_selector_match(s, o));
	api_selector_free(s);
	json_decref(o);
}

static void test_from_json(void **state)
{
	struct api_error e = { 0 };
	json_t *a = obj(pod_a), *b = obj(pod_b);
	json_t *ls = obj("{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":["
			 "{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"front\",\"back\"]}]}");
	(void)state;
	struct api_selector *s = api_selector_from_json(ls, &e);
	assert_non_null(s);
	assert_true(api_selector_match(s, a));
	assert_false(api_selector_match(s, b));
	api_selector_free(s);
	json_decref(ls);
	ls = obj("{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"DoesNotExist\"}]}");
	s = api_selector_from_json(ls, &e);
	assert_non_null(s);
	assert_false(api_selector_match(s, a));
	assert_true(api_selector_match(s, b));
	api_selector_free(s);
	json_decref(ls);
	json_decref(a);
	json_decref(b);
}

/* The selector s on the labels {"n": value}: on the json_t and on its
 * msgpack as the watch cache reads it, which must agree. */
static bool n_label_picks(const char *s, const char *value)
{
	struct api_error e = { 0 };
	struct api_selector *sel = api_label_selector(s, &e);
	json_t *o = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "n", value);
	char *mp = NULL;
	size_t len = 0;
	if (sel == NULL)
		fail_msg("selector %s refused: %s", s, e.message);
	assert_non_null(o);
	assert_int_equal(api_mp_encode(o, &mp, &len), 0);
	bool got = api_selector_match(sel, o);
	assert_int_equal(api_selector_match_mp(sel, mp, len, NULL), got);
	free(mp);
	json_decref(o);
	api_selector_free(sel);
	return got;
}

/* Gt and Lt compare integers as Kubernetes' strconv.ParseInt reads them;
 * the msgpack matcher once read only a label's first 63 bytes, so a
 * longer value with leading zeros (found by fuzz-api_select) compared
 * as 0 there and as itself on the json_t. */
static void test_label_gt_lt(void **state)
{
	struct api_error e = { 0 };
	(void)state;
	assert_true(n_label_picks("n>4", "5"));
	assert_false(n_label_picks("n>4", "4"));
	assert_true(n_label_picks("n<0", "-3"));
	assert_true(n_label_picks("n>4",
	    "0000000000000000000000000000000000000000000000000000000000000000007"));
	/* a label that is not an integer matches neither */
	assert_false(n_label_picks("n>4", "5abc"));
	assert_false(n_label_picks("n<4", "abc"));
	assert_false(n_label_picks("n<4", " 3"));
	assert_false(n_label_picks("n>4", "99999999999999999999"));
	/* nor may the selector's value be anything else */
	refused(api_label_selector("n>x", &e), &e, "n>x");
	refused(api_label_selector("n<99999999999999999999", &e), &e,
	    "n<99999999999999999999");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_operators),
		cmocka_unit_test(test_label_malformed),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_event_fields),
		cmocka_unit_test(test_from_json),
		cmocka_unit_test(test_label_gt_lt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

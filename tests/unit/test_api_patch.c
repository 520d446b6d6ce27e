/* tests/unit/test_api_patch.c — api_patch (plugins/apiserver/patch*.c):
 * JSON patch, merge patch, strategic merge patch and server-side apply,
 * with the bodies real kubectl 1.32 sends (tests/unit/fixtures/patch) and
 * the errors kube-apiserver answers.
 *
 * CMake links it with util.c's api_err* helpers; built alone with
 * -DKUBUS_PATCH_STANDALONE it brings stand-ins for them:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE
 *       -DKUBUS_PATCH_STANDALONE -fsanitize=address,undefined
 *       -I plugins/apiserver -I sdk/include plugins/apiserver/patch*.c
 *       tests/unit/test_api_patch.c -ljansson -lcmocka
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#ifdef KUBUS_PATCH_STANDALONE
void api_err(struct api_error *e, int code, const char *reason, const char *fmt,
    ...)
{
	va_list ap;

	e->code = code;
	e->reason = reason;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

void api_err_cause(struct api_error *e, const char *reason, const char *field,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (e->causes == NULL)
		e->causes = json_array();
	json_array_append_new(e->causes,
	    json_pack("{s:s,s:s,s:s}", "reason", reason, "message", msg,
		"field", field));
	if (e->code == 0) {
		e->code = 422;
		e->reason = "Invalid";
	}
}

void api_err_invalid(struct api_error *e, const char *kind, const char *name)
{
	json_t *c = json_array_get(e->causes, 0);

	snprintf(e->message, sizeof(e->message), "%s \"%s\" is invalid: %s: %s",
	    kind, name, json_string_value(json_object_get(c, "field")),
	    json_string_value(json_object_get(c, "message")));
}

void api_err_clear(struct api_error *e)
{
	json_decref(e->causes);
	memset(e, 0, sizeof(*e));
}
#endif

static const struct api_resource pods = { .group = "",
	.version = "v1",
	.kind = "Pod",
	.plural = "pods",
	.namespaced = true };
static const struct api_resource deployments = { .group = "apps",
	.version = "v1",
	.kind = "Deployment",
	.plural = "deployments",
	.namespaced = true };
static const struct api_resource services = { .group = "",
	.version = "v1",
	.kind = "Service",
	.plural = "services",
	.namespaced = true };
static const struct api_resource nodes = { .group = "",
	.version = "v1",
	.kind = "Node",
	.plural = "nodes" };
static const struct api_resource configmaps = { .group = "",
	.version = "v1",
	.kind = "ConfigMap",
	.plural = "configmaps",
	.namespaced = true };

#define REJECTED                                                               \
	"the server rejected our request due to an error in our request"

/* --- helpers -------------------------------------------------------------- */

/* JSON written with ' for " (none of the tests' strings holds a quote). */
static json_t *J(const char *text)
{
	char *s = strdup(text);
	json_error_t err;

	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	json_t *v = json_loads(s, JSON_DECODE_ANY, &err);
	if (v == NULL)
		fail_msg("bad test JSON (%s): %s", err.text, s);
	free(s);
	return v;
}

static json_t *fixture(const char *name)
{
	const char *src = getenv("KUBUS_SRC");
	char path[512];
	json_error_t err;

	snprintf(path, sizeof(path), "%s/tests/unit/fixtures/patch/%s",
	    src ? src : ".", name);
	json_t *v = json_load_file(path, 0, &err);
	if (v == NULL)
		fail_msg("%s: %s", path, err.text);
	return v;
}

/* Does any node of tree appear in the other tree (jansson's true, false
 * and null are shared singletons and do not count)? */
static bool contains_node(const json_t *hay, const json_t *needle)
{
	const char *k;
	json_t *v;
	size_t i;

	if (hay == needle)
		return true;
	if (json_is_object(hay)) {
		json_object_foreach((json_t *)hay, k, v)
			if (contains_node(v, needle))
				return true;
	} else if (json_is_array(hay)) {
		json_array_foreach(hay, i, v)
			if (contains_node(v, needle))
				return true;
	}
	return false;
}

static bool shares_nodes(const json_t *out, const json_t *in)
{
	const char *k;
	json_t *v;
	size_t i;

	if (out == NULL || in == NULL)
		return false;
	if (!json_is_boolean(out) && !json_is_null(out) &&
	    contains_node(in, out))
		return true;
	if (json_is_object(out)) {
		json_object_foreach((json_t *)out, k, v)
			if (shares_nodes(v, in))
				return true;
	} else if (json_is_array(out)) {
		json_array_foreach(out, i, v)
			if (shares_nodes(v, in))
				return true;
	}
	return false;
}

static void fail_diff(const json_t *got, const json_t *want)
{
	char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
	char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS);

	print_error("got:\n%s\nwant:\n%s\n", g ? g : "(null)",
	    w ? w : "(null)");
	free(g);
	free(w);
	fail();
}

/* Patch obj with patch and compare with want (all borrowed); the inputs
 * must come back unchanged and share nothing with the result. */
static void check_patch(int type, const struct api_resource *r,
    const json_t *obj, const json_t *patch, const json_t *want)
{
	struct api_error e = { 0 };
	json_t *obj_before = json_deep_copy(obj);
	json_t *patch_before = json_deep_copy(patch);
	json_t *got = api_patch(type, r, obj, patch, &e);

	if (got == NULL)
		fail_msg("api_patch failed: %d %s: %s", e.code, e.reason,
		    e.message);
	if (!json_equal(got, want))
		fail_diff(got, want);
	assert_true(obj == NULL || json_equal(obj, obj_before));
	assert_true(json_equal(patch, patch_before));
	assert_false(shares_nodes(got, obj));
	assert_false(shares_nodes(got, patch));
	json_decref(got);
	json_decref(obj_before);
	json_decref(patch_before);
	api_err_clear(&e);
}

static void expect(int type, const struct api_resource *r, const char *obj,
    const char *patch, const char *want)
{
	json_t *o = obj ? J(obj) : NULL, *p = J(patch), *w = J(want);

	check_patch(type, r, o, p, w);
	json_decref(o);
	json_decref(p);
	json_decref(w);
}

/* The patch fails with code, reason and (when msg) that message. */
static void expect_err_json(int type, const struct api_resource *r,
    const char *obj, const json_t *patch, int code, const char *reason,
    const char *msg)
{
	struct api_error e = { 0 };
	json_t *o = obj ? J(obj) : NULL;
	json_t *got = api_patch(type, r, o, patch, &e);

	if (got)
		fail_diff(got, NULL);
	assert_int_equal(e.code, code);
	assert_string_equal(e.reason, reason);
	if (msg)
		assert_string_equal(e.message, msg);
	json_decref(o);
	api_err_clear(&e);
}

static void expect_err(int type, const struct api_resource *r, const char *obj,
    const char *patch, int code, const char *reason, const char *msg)
{
	json_t *p = J(patch);

	expect_err_json(type, r, obj, p, code, reason, msg);
	json_decref(p);
}

static const char pod[] =
    "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p',"
    "'namespace':'default','labels':{'app':'web','tier':'fe'},"
    "'annotations':{'a/b':'1','c~d':'2'}},"
    "'spec':{'containers':[{'name':'app','image':'nginx',"
    "'args':['-g','x'],'ports':[{'containerPort':80}],"
    "'env':[{'name':'A','value':'1'},{'name':'B','value':'2'}]},"
    "{'name':'side','image':'busybox'}],"
    "'tolerations':[{'key':'k','operator':'Exists'}]},"
    "'status':{'phase':'Running'}}";

/* --- JSON patch ----------------------------------------------------------- */

static void test_json_patch_members(void **state)
{
	(void)state;
	expect(API_PATCH_JSON, &pods, "{'a':1,'b':{'c':2}}",
	    "[{'op':'add','path':'/b/d','value':{'x':[1]}},"
	    "{'op':'replace','path':'/a','value':'one'},"
	    "{'op':'remove','path':'/b/c'},"
	    "{'op':'add','path':'/a','value':null}]",
	    "{'a':null,'b':{'d':{'x':[1]}}}");
	/* ~1 is "/" and ~0 is "~" in a reference token. */
	expect(API_PATCH_JSON, &pods,
	    "{'metadata':{'annotations':{'a/b':'1','c~d':'2'}}}",
	    "[{'op':'replace','path':'/metadata/annotations/a~1b',"
	    "'value':'x'},{'op':'remove','path':"
	    "'/metadata/annotations/c~0d'},{'op':'add','path':"
	    "'/metadata/annotations/~01','value':'y'}]",
	    "{'metadata':{'annotations':{'a/b':'x','~1':'y'}}}");
	/* json-patch v4, and so Kubernetes, lets "replace" add a member. */
	expect(API_PATCH_JSON, &pods, "{'metadata':{}}",
	    "[{'op':'replace','path':'/metadata/labels',"
	    "'value':{'a':'b'}}]",
	    "{'metadata':{'labels':{'a':'b'}}}");
	/* The empty key is a member too. */
	expect(API_PATCH_JSON, &pods, "{}",
	    "[{'op':'add','path':'/','value':1}]", "{'':1}");
}

static void test_json_patch_arrays(void **state)
{
	(void)state;
	expect(API_PATCH_JSON, &pods, "{'l':['a','b','c']}",
	    "[{'op':'add','path':'/l/1','value':'x'},"
	    "{'op':'add','path':'/l/-','value':'end'},"
	    "{'op':'add','path':'/l/5','value':'len'},"
	    "{'op':'remove','path':'/l/0'},"
	    "{'op':'replace','path':'/l/0','value':'X'}]",
	    "{'l':['X','b','c','end','len']}");
	/* Negative indexes count from the end (json-patch v4's default). */
	expect(API_PATCH_JSON, &pods, "{'l':[1,2,3]}",
	    "[{'op':'remove','path':'/l/-1'},"
	    "{'op':'add','path':'/l/-1','value':9},"
	    "{'op':'replace','path':'/l/-3','value':0}]",
	    "{'l':[0,2,9]}");
	expect(API_PATCH_JSON, &pods, pod,
	    "[{'op':'replace','path':'/spec/containers/0/image',"
	    "'value':'nginx:2'},{'op':'remove','path':"
	    "'/spec/containers/1'},{'op':'test','path':"
	    "'/spec/containers/0/ports/0/containerPort','value':80}]",
	    "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p',"
	    "'namespace':'default','labels':{'app':'web','tier':'fe'},"
	    "'annotations':{'a/b':'1','c~d':'2'}},"
	    "'spec':{'containers':[{'name':'app','image':'nginx:2',"
	    "'args':['-g','x'],'ports':[{'containerPort':80}],"
	    "'env':[{'name':'A','value':'1'},{'name':'B','value':'2'}]}],"
	    "'tolerations':[{'key':'k','operator':'Exists'}]},"
	    "'status':{'phase':'Running'}}");
}

static void test_json_patch_move_copy_test(void **state)
{
	(void)state;
	expect(API_PATCH_JSON, &pods, "{'a':{'x':[1,{'y':2}]},'b':{}}",
	    "[{'op':'copy','from':'/a/x','path':'/b/x'},"
	    "{'op':'move','from':'/a/x/1','path':'/b/y'},"
	    "{'op':'test','path':'/b/x','value':[1,{'y':2}]},"
	    "{'op':'test','path':'/a','value':{'x':[1]}},"
	    "{'op':'test','path':'/missing','value':null},"
	    "{'op':'move','from':'/a','path':'/a'}]",
	    "{'a':{'x':[1]},'b':{'x':[1,{'y':2}],'y':{'y':2}}}");
	/* "test" of the whole document, "replace" of the whole document. */
	expect(API_PATCH_JSON, &pods, "{'a':1}",
	    "[{'op':'test','path':'','value':{'a':1}},"
	    "{'op':'replace','path':'','value':{'b':2}}]",
	    "{'b':2}");
	/* A null patch decodes to no operations. */
	expect(API_PATCH_JSON, &pods, "{'a':1}", "null", "{'a':1}");
	expect(API_PATCH_JSON, &pods, "{'a':1}", "[]", "{'a':1}");
}

/* Every operation that does not apply is the same bare 422: Kubernetes
 * drops json-patch's message (kubectl prints "The request is invalid: the
 * server rejected our request due to an error in our request"). */
static void test_json_patch_failures(void **state)
{
	static const char *const bad[] = {
		"[{'op':'test','path':'/spec/replicas','value':2}]",
		"[{'op':'test','path':'/spec/replicas','value':'3'}]",
		"[{'op':'test','path':'/spec/nope','value':1}]",
		"[{'op':'test','path':'/spec'}]",
		"[{'op':'remove','path':'/spec/nope'}]",
		"[{'op':'remove','path':'/spec/l/3'}]",
		"[{'op':'remove','path':'/spec/l/-4'}]",
		"[{'op':'remove','path':'/spec/l/x'}]",
		"[{'op':'remove','path':'/spec/l/-'}]",
		"[{'op':'remove','path':''}]",
		"[{'op':'add','path':'/no/such/parent','value':1}]",
		"[{'op':'add','path':'/spec/l/4','value':1}]",
		"[{'op':'add','path':'/spec/l/-5','value':1}]",
		"[{'op':'add','path':'/spec/replicas/x','value':1}]",
		"[{'op':'add','path':'','value':{}}]",
		"[{'op':'add','path':'spec/x','value':1}]",
		"[{'op':'replace','path':'/spec/l/3','value':1}]",
		"[{'op':'replace','path':'','value':3}]",
		"[{'op':'move','from':'/spec/nope','path':'/x'}]",
		"[{'op':'move','from':'/spec','path':'/spec/x'}]",
		"[{'op':'move','path':'/x'}]",
		"[{'op':'copy','from':'/spec/nope','path':'/x'}]",
		"[{'op':'frobnicate','path':'/spec'}]",
		"[{'path':'/spec'}]",
		"[{'op':1,'path':'/spec'}]",
		"[{'op':'add','value':1}]",
		"[{'op':'add','path':7,'value':1}]",
		"[null]",
		/* The first op applies, the second does not: nothing does. */
		"[{'op':'add','path':'/x','value':1},"
		"{'op':'remove','path':'/y'}]",
	};
	static const char obj[] = "{'spec':{'replicas':3,'l':[1,2,3]}}";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("%s\n", bad[i]);
		expect_err(API_PATCH_JSON, &deployments, obj, bad[i], 422,
		    "Invalid", REJECTED);
	}
}

/* A body that does not decode as []Operation is a 400 with Go's decode
 * error. */
static void test_json_patch_malformed(void **state)
{
	(void)state;
	expect_err(API_PATCH_JSON, &pods, "{}", "{'op':'add'}", 400,
	    "BadRequest",
	    "json: cannot unmarshal object into Go value of type "
	    "jsonpatch.Patch");
	expect_err(API_PATCH_JSON, &pods, "{}", "'add'", 400, "BadRequest",
	    "json: cannot unmarshal string into Go value of type "
	    "jsonpatch.Patch");
	expect_err(API_PATCH_JSON, &pods, "{}", "[{'op':'add'},'x']", 400,
	    "BadRequest",
	    "json: cannot unmarshal string into Go value of type "
	    "jsonpatch.Operation");
	expect_err(API_PATCH_JSON, &pods, "{}", "[[1]]", 400, "BadRequest",
	    "json: cannot unmarshal array into Go value of type "
	    "jsonpatch.Operation");
	expect_err(API_PATCH_JSON, &pods, "{}", "[3]", 400, "BadRequest",
	    "json: cannot unmarshal number into Go value of type "
	    "jsonpatch.Operation");
	expect_err_json(API_PATCH_JSON, &pods, "{}", NULL, 400, "BadRequest",
	    "unexpected end of JSON input");
}

static void test_json_patch_too_many_ops(void **state)
{
	json_t *ops = json_array();

	(void)state;
	for (int i = 0; i <= 10000; i++)
		json_array_append_new(ops,
		    json_pack("{s:s,s:s,s:i}", "op", "add", "path", "/x",
			"value", i));
	expect_err_json(API_PATCH_JSON, &pods, "{}", ops, 413,
	    "RequestEntityTooLarge",
	    "Request entity too large: The allowed "
	    "maximum operations in a JSON patch is 10000, got 10001");
	json_array_remove(ops, 0);
	struct api_error e = { 0 };
	json_t *obj = json_object();
	json_t *got = api_patch(API_PATCH_JSON, &pods, obj, ops, &e);
	assert_non_null(got);
	assert_int_equal(json_integer_value(json_object_get(got, "x")), 10000);
	json_decref(got);
	json_decref(obj);
	json_decref(ops);
}

/* "copy" may add 3 MiB to the object in all (Kubernetes'
 * JSONPatchMaxCopyBytes): each one can double it, and a short patch
 * would ask for gigabytes. Past that it fails as any operation does. */
static void test_json_patch_copy_limit(void **state)
{
	char big[1025];
	struct api_error e = { 0 };
	json_t *ops = json_array(), *got;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_t *obj = json_pack("{s:{s:s}}", "d", "k", big);
	/* each copies /d into itself: 1 KiB, 2 KiB, …, the 12th 2 MiB */
	for (int i = 0; i < 12; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/d/c%d", i);
		json_array_append_new(ops,
		    json_pack("{s:s,s:s,s:s}", "op", "copy", "from", "/d",
			"path", path));
	}
	got = api_patch(API_PATCH_JSON, &configmaps, obj, ops, &e);
	assert_null(got);
	assert_int_equal(e.code, 422);
	assert_string_equal(e.message, REJECTED);
	api_err_clear(&e);
	json_array_remove(ops, 11);
	got = api_patch(API_PATCH_JSON, &configmaps, obj, ops, &e);
	assert_non_null(got);
	json_t *c10 = json_object_get(json_object_get(got, "d"), "c10");
	assert_non_null(json_object_get(json_object_get(c10, "c9"), "k"));
	json_decref(got);
	json_decref(obj);
	json_decref(ops);
}

/* An object of `levels` nested objects, each but the last holding the
 * next as 'a', after `head` (JSON with '). */
static char *nested(const char *head, int levels)
{
	size_t n = strlen(head) + 7 * (size_t)levels + 3;
	char *s = malloc(n), *p = s;

	p += sprintf(p, "%s", head);
	for (int i = 1; i < levels; i++)
		p += sprintf(p, "{'a':");
	p += sprintf(p, "{}");
	for (int i = 1; i < levels; i++)
		*p++ = '}';
	*p = '\0';
	return s;
}

/* "/a/a/…/a" (n tokens) then tail. */
static char *chain_path(const char *lead, int n, const char *tail)
{
	char *s = malloc(strlen(lead) + 2 * (size_t)n + strlen(tail) + 1);
	char *p = s + sprintf(s, "%s", lead);

	for (int i = 0; i < n; i++)
		p += sprintf(p, "/a");
	sprintf(p, "%s", tail);
	return s;
}

/* No operation may nest the object deeper than a body may be (100
 * levels): the store could not give back what the decoders refuse. */
static void test_json_patch_depth_limit(void **state)
{
	char *obj = nested("", 99); /* the innermost {} at level 99 */
	char *deep = chain_path("", 98, "/b");
	json_t *ops;

	(void)state;
	ops = json_pack("[{s:s,s:s,s:{}}]", "op", "add", "path", deep, "value");
	json_t *o = J(obj), *got;
	struct api_error e = { 0 };
	got = api_patch(API_PATCH_JSON, &configmaps, o, ops, &e);
	assert_non_null(got); /* level 100 */
	json_decref(got);
	json_decref(ops);
	ops = json_pack("[{s:s,s:s,s:{s:{}}}]", "op", "add", "path", deep,
	    "value", "c");
	expect_err_json(API_PATCH_JSON, &configmaps, obj, ops, 422, "Invalid",
	    REJECTED);
	json_decref(ops);
	/* "move" and "copy" of a 60-level value under 40 levels and 41 */
	char *two = malloc(2 * strlen(obj) + 64);
	char *n60 = nested("", 60), *n45 = nested("", 45);
	sprintf(two, "{'deep':%s,'b':%s}", n60, n45);
	static const char *const kinds[] = { "move", "copy" };
	for (int i = 0; i < 2; i++) {
		char *ok = chain_path("/b", 38, "/deep");
		char *bad = chain_path("/b", 39, "/deep");
		json_decref(o);
		o = J(two);
		ops = json_pack("[{s:s,s:s,s:s}]", "op", kinds[i], "from",
		    "/deep", "path", ok);
		got = api_patch(API_PATCH_JSON, &configmaps, o, ops, &e);
		assert_non_null(got);
		json_decref(got);
		json_decref(ops);
		ops = json_pack("[{s:s,s:s,s:s}]", "op", kinds[i], "from",
		    "/deep", "path", bad);
		expect_err_json(API_PATCH_JSON, &configmaps, two, ops, 422,
		    "Invalid", REJECTED);
		json_decref(ops);
		free(ok);
		free(bad);
	}
	json_decref(o);
	free(two);
	free(n60);
	free(n45);
	free(obj);
	free(deep);
}

/* --- JSON merge patch ----------------------------------------------------- */

static void test_merge_patch_labels(void **state)
{
	(void)state;
	/* kubectl label pod p tier=frontend; kubectl label pod p tier- */
	expect(API_PATCH_MERGE, &pods,
	    "{'metadata':{'name':'p','labels':{'app':'web'}}}",
	    "{'metadata':{'labels':{'tier':'frontend'}}}",
	    "{'metadata':{'name':'p','labels':{'app':'web',"
	    "'tier':'frontend'}}}");
	expect(API_PATCH_MERGE, &pods,
	    "{'metadata':{'name':'p','labels':{'app':'web',"
	    "'tier':'fe'}}}",
	    "{'metadata':{'labels':{'tier':null,'gone':null},"
	    "'annotations':{'note':'hello'}}}",
	    "{'metadata':{'name':'p','labels':{'app':'web'},"
	    "'annotations':{'note':'hello'}}}");
	/* kubectl scale: merge patch of the scale subresource. */
	expect(API_PATCH_MERGE, &deployments,
	    "{'kind':'Scale','spec':{'replicas':2},"
	    "'status':{'replicas':2}}",
	    "{'spec':{'replicas':4}}",
	    "{'kind':'Scale','spec':{'replicas':4},"
	    "'status':{'replicas':2}}");
}

static void test_merge_patch_rfc7386(void **state)
{
	(void)state;
	/* Lists replace whole (no merge keys here); maps merge; scalars and
	 * maps replace each other; nulls in new values are dropped, also in
	 * maps inside lists, while null list elements stay. */
	expect(API_PATCH_MERGE, &pods, pod,
	    "{'spec':{'containers':[{'name':'app','image':'x',"
	    "'args':null}],'tolerations':null,'nodeSelector':"
	    "{'a':'b','c':null}},'status':'gone',"
	    "'metadata':{'labels':'oops','annotations':{'a/b':{'x':1}}},"
	    "'extra':[null,{'k':null,'v':1}]}",
	    "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p',"
	    "'namespace':'default','labels':'oops',"
	    "'annotations':{'a/b':{'x':1},'c~d':'2'}},"
	    "'spec':{'containers':[{'name':'app','image':'x'}],"
	    "'nodeSelector':{'a':'b'}},'status':'gone',"
	    "'extra':[null,{'v':1}]}");
	expect(API_PATCH_MERGE, &pods, "{'a':{'b':1}}", "{}", "{'a':{'b':1}}");
}

static void test_merge_patch_malformed(void **state)
{
	struct api_error e = { 0 };
	json_t *obj = J("{'a':1}"), *patch = J("[{'a':null}]");

	(void)state;
	expect_err(API_PATCH_MERGE, &pods, "{}", "'x'", 400, "BadRequest",
	    "Invalid JSON Patch");
	expect_err(API_PATCH_MERGE, &pods, "{}", "12", 400, "BadRequest",
	    "Invalid JSON Patch");
	expect_err(API_PATCH_MERGE, &pods, "{}", "null", 400, "BadRequest",
	    "Invalid JSON Patch");
	expect_err_json(API_PATCH_MERGE, &pods, "{}", NULL, 400, "BadRequest",
	    "Invalid JSON Patch");
	/* An array replaces the object, which then cannot be decoded: 422
	 * with a cause on "patch". */
	assert_null(api_patch(API_PATCH_MERGE, &pods, obj, patch, &e));
	assert_int_equal(e.code, 422);
	assert_string_equal(e.reason, "Invalid");
	json_t *cause = json_array_get(e.causes, 0);
	assert_string_equal(json_string_value(json_object_get(cause, "field")),
	    "patch");
	assert_string_equal(json_string_value(json_object_get(cause, "reason")),
	    "FieldValueInvalid");
	assert_non_null(
	    strstr(json_string_value(json_object_get(cause, "message")),
		"Invalid value: \"[{}]\": couldn't get version/kind; "
		"json parse error: json: cannot unmarshal array"));
	api_err_clear(&e);
	json_decref(obj);
	json_decref(patch);
}

/* --- strategic merge: what kubectl sends ---------------------------------- */

static void check_fixture(const struct api_resource *r, const char *name)
{
	char f[128];

	snprintf(f, sizeof(f), "%s-live.json", name);
	json_t *live = fixture(f);
	snprintf(f, sizeof(f), "%s-patch.json", name);
	json_t *patch = fixture(f);
	snprintf(f, sizeof(f), "%s-want.json", name);
	json_t *want = fixture(f);
	check_patch(API_PATCH_STRATEGIC, r, live, patch, want);
	json_decref(live);
	json_decref(patch);
	json_decref(want);
}

/* kubectl apply, then apply of a manifest with a changed container list,
 * changed ports and env, another volume source and rollout strategy. */
static void test_smp_kubectl_apply_deployment(void **state)
{
	(void)state;
	check_fixture(&deployments, "csa-deploy");
}

/* Service ports by port, finalizers as a set. */
static void test_smp_kubectl_apply_service(void **state)
{
	(void)state;
	check_fixture(&services, "csa-svc");
}

/* The second apply of KUBECTL.md's deploy.yaml -> deploy2.yaml (image and
 * replicas), body as kubectl 1.32 sends it. */
static void test_smp_kubectl_apply_image(void **state)
{
	static const char live[] =
	    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
	    "{'annotations':{'kubectl.kubernetes.io/last-applied-"
	    "configuration':'old'},'labels':{'app':'web'},'name':'web',"
	    "'namespace':"
	    "'default','uid':'u','generation':1},'spec':{'replicas':2,"
	    "'selector':{'matchLabels':{'app':'web'}},'template':"
	    "{'metadata':{'labels':{'app':'web'}},'spec':{'containers':"
	    "[{'image':'nginx:1.27','name':'app','ports':[{"
	    "'containerPort':80,'protocol':'TCP'}],'imagePullPolicy':"
	    "'IfNotPresent'}],'restartPolicy':'Always'}}},"
	    "'status':{'replicas':2}}";

	(void)state;
	expect(API_PATCH_STRATEGIC, &deployments, live,
	    "{'metadata':{'annotations':{'kubectl.kubernetes.io/"
	    "last-applied-configuration':'new'}},'spec':{'replicas':3,"
	    "'template':{'spec':{'$setElementOrder/containers':"
	    "[{'name':'app'}],'containers':[{'image':'nginx:1.28',"
	    "'name':'app'}]}}}}",
	    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
	    "{'annotations':{'kubectl.kubernetes.io/last-applied-"
	    "configuration':'new'},'labels':{'app':'web'},'name':'web',"
	    "'namespace':"
	    "'default','uid':'u','generation':1},'spec':{'replicas':3,"
	    "'selector':{'matchLabels':{'app':'web'}},'template':"
	    "{'metadata':{'labels':{'app':'web'}},'spec':{'containers':"
	    "[{'image':'nginx:1.28','name':'app','ports':[{"
	    "'containerPort':80,'protocol':'TCP'}],'imagePullPolicy':"
	    "'IfNotPresent'}],'restartPolicy':'Always'}}},"
	    "'status':{'replicas':2}}");
}

/* kubectl cordon / uncordon. */
static void test_smp_cordon(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &nodes,
	    "{'metadata':{'name':'n'},'spec':{'podCIDR':'10.0.0.0/24'}}",
	    "{'spec':{'unschedulable':true}}",
	    "{'metadata':{'name':'n'},'spec':{'podCIDR':'10.0.0.0/24',"
	    "'unschedulable':true}}");
	expect(API_PATCH_STRATEGIC, &nodes,
	    "{'metadata':{'name':'n'},'spec':{'unschedulable':true}}",
	    "{'spec':{'unschedulable':null}}",
	    "{'metadata':{'name':'n'},'spec':{}}");
}

/* --- strategic merge: lists ----------------------------------------------- */

/* kubectl patch … -p '{"spec":{"containers":[{"name":"side","$patch":
 * "delete"}]}}' */
static void test_smp_delete_container(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'spec':{'containers':[{'name':'app','image':'a'},"
	    "{'name':'side','image':'b'},{'name':'last'}]}}",
	    "{'spec':{'containers':[{'name':'side','$patch':'delete'},"
	    "{'name':'nope','$patch':'delete'}]}}",
	    "{'spec':{'containers':[{'name':'app','image':'a'},"
	    "{'name':'last'}]}}");
}

/* Env merges by name: a changed value in place, a new variable ahead of
 * the ones the patch does not name (Kubernetes' order without
 * $setElementOrder), ports by containerPort, lists without a strategy
 * (args) replaced. */
static void test_smp_env_merge(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &pods, pod,
	    "{'spec':{'containers':[{'name':'app','env':["
	    "{'name':'B','value':'20'},{'name':'C','value':'3'}],"
	    "'args':['-v'],'ports':[{'containerPort':80,"
	    "'name':'http'},{'containerPort':443}]}]}}",
	    "{'apiVersion':'v1','kind':'Pod','metadata':{'name':'p',"
	    "'namespace':'default','labels':{'app':'web','tier':'fe'},"
	    "'annotations':{'a/b':'1','c~d':'2'}},"
	    "'spec':{'containers':[{'name':'app','image':'nginx',"
	    "'args':['-v'],'ports':[{'containerPort':80,'name':'http'},"
	    "{'containerPort':443}],"
	    "'env':[{'name':'A','value':'1'},{'name':'B',"
	    "'value':'20'},{'name':'C','value':'3'}]},"
	    "{'name':'side','image':'busybox'}],"
	    "'tolerations':[{'key':'k','operator':'Exists'}]},"
	    "'status':{'phase':'Running'}}");
	/* New items go ahead of the server's remaining ones. */
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'spec':{'containers':[{'name':'c','env':["
	    "{'name':'A'},{'name':'B'}]}]}}",
	    "{'spec':{'containers':[{'name':'c','env':["
	    "{'name':'Z','value':'z'}]}]}}",
	    "{'spec':{'containers':[{'name':'c','env':["
	    "{'name':'Z','value':'z'},{'name':'A'},{'name':'B'}]}]}}");
	/* Tolerations have no strategy: the list is replaced. */
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'spec':{'tolerations':[{'key':'a'},{'key':'b'}]}}",
	    "{'spec':{'tolerations':[{'key':'c','value':null}]}}",
	    "{'spec':{'tolerations':[{'key':'c'}]}}");
}

/* $setElementOrder puts the named items in its order; the live list's
 * other items keep theirs and go ahead of a named item only if they stood
 * before it (Kubernetes' mergeSortedSlice). */
static void test_smp_set_element_order(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'spec':{'containers':[{'name':'x'},{'name':'a'},"
	    "{'name':'y'},{'name':'b'},{'name':'z'}]}}",
	    "{'spec':{'$setElementOrder/containers':[{'name':'b'},"
	    "{'name':'n'},{'name':'a'}],'containers':"
	    "[{'name':'n','image':'new'}]}}",
	    "{'spec':{'containers':[{'name':'x'},{'name':'y'},"
	    "{'name':'b'},{'name':'n','image':'new'},{'name':'a'},"
	    "{'name':'z'}]}}");
	/* Only an order: the list's contents stay. */
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'spec':{'containers':[{'name':'a'},{'name':'b'}]}}",
	    "{'spec':{'$setElementOrder/containers':[{'name':'b'},"
	    "{'name':'a'}]}}",
	    "{'spec':{'containers':[{'name':'b'},{'name':'a'}]}}");
	/* A list the object does not have yet. */
	expect(API_PATCH_STRATEGIC, &pods, "{'spec':{}}",
	    "{'spec':{'$setElementOrder/containers':[{'name':'b'},"
	    "{'name':'a'}],'containers':[{'name':'b'},"
	    "{'name':'c','$patch':'delete'},{'name':'a'}]}}",
	    "{'spec':{'containers':[{'name':'b'},{'name':'a'}]}}");
	/* A set of scalars: finalizers. */
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'metadata':{'finalizers':['s','a','b']}}",
	    "{'metadata':{'$setElementOrder/finalizers':['b','c','a'],"
	    "'finalizers':['c']}}",
	    "{'metadata':{'finalizers':['s','b','c','a']}}");
}

/* Primitive lists with the merge strategy are sets. */
static void test_smp_primitive_sets(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'metadata':{'finalizers':['a','b','a']}}",
	    "{'metadata':{'finalizers':['b','c','c']}}",
	    "{'metadata':{'finalizers':['a','b','c']}}");
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'metadata':{'finalizers':['a','b','c']}}",
	    "{'metadata':{'$deleteFromPrimitiveList/finalizers':['b','x']}}",
	    "{'metadata':{'finalizers':['a','c']}}");
	/* Deleting from a list the object lacks does nothing. */
	expect(API_PATCH_STRATEGIC, &pods, "{'metadata':{}}",
	    "{'metadata':{'$deleteFromPrimitiveList/finalizers':['b']}}",
	    "{'metadata':{}}");
	expect(API_PATCH_STRATEGIC, &nodes,
	    "{'spec':{'podCIDRs':['10.0.0.0/24']}}",
	    "{'spec':{'podCIDRs':['fd00::/64']}}",
	    "{'spec':{'podCIDRs':['fd00::/64','10.0.0.0/24']}}");
	/* Lists without a strategy are replaced, scalars or not. */
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'spec':{'containers':[{'name':'a','command':['x']}]}}",
	    "{'spec':{'containers':[{'name':'a','command':['y']}]}}",
	    "{'spec':{'containers':[{'name':'a','command':['y']}]}}");
}

/* The merge keys of the other tagged lists. */
static void test_smp_merge_keys(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'metadata':{'ownerReferences':[{'uid':'1','name':'a'}]},"
	    "'spec':{'volumes':[{'name':'v','emptyDir':{}}],"
	    "'imagePullSecrets':[{'name':'s'}],'hostAliases':"
	    "[{'ip':'1.2.3.4','hostnames':['a']}],'initContainers':"
	    "[{'name':'i','volumeMounts':[{'name':'v','mountPath':"
	    "'/v'}]}]},'status':{'conditions':[{'type':'Ready',"
	    "'status':'False'},{'type':'Scheduled','status':'True'}],"
	    "'podIPs':[{'ip':'10.0.0.1'}]}}",
	    "{'metadata':{'ownerReferences':[{'uid':'2','name':'b'}]},"
	    "'spec':{'volumes':[{'name':'w','emptyDir':{}}],"
	    "'imagePullSecrets':[{'name':'t'}],'hostAliases':"
	    "[{'ip':'1.2.3.4','hostnames':['b']}],'initContainers':"
	    "[{'name':'i','volumeMounts':[{'name':'v','mountPath':"
	    "'/v','readOnly':true}]}]},'status':{'conditions':"
	    "[{'type':'Ready','status':'True'}],'podIPs':"
	    "[{'ip':'fd00::1'}]}}",
	    "{'metadata':{'ownerReferences':[{'uid':'2','name':'b'},"
	    "{'uid':'1','name':'a'}]},"
	    "'spec':{'volumes':[{'name':'w','emptyDir':{}},"
	    "{'name':'v','emptyDir':{}}],"
	    "'imagePullSecrets':[{'name':'t'},{'name':'s'}],"
	    "'hostAliases':[{'ip':'1.2.3.4','hostnames':['b']}],"
	    "'initContainers':[{'name':'i','volumeMounts':[{'name':'v',"
	    "'mountPath':'/v','readOnly':true}]}]},'status':{'conditions':"
	    "[{'type':'Ready','status':'True'},{'type':'Scheduled',"
	    "'status':'True'}],'podIPs':[{'ip':'fd00::1'},"
	    "{'ip':'10.0.0.1'}]}}");
	/* Deployment: the pod template's lists, status conditions. */
	expect(API_PATCH_STRATEGIC, &deployments,
	    "{'spec':{'template':{'spec':{'containers':[{'name':'a',"
	    "'ports':[{'containerPort':80}]}]}}},'status':{'conditions':"
	    "[{'type':'Available','status':'False'}]}}",
	    "{'spec':{'template':{'spec':{'containers':[{'name':'a',"
	    "'ports':[{'containerPort':81}]}]}}},'status':{'conditions':"
	    "[{'type':'Progressing','status':'True'}]}}",
	    "{'spec':{'template':{'spec':{'containers':[{'name':'a',"
	    "'ports':[{'containerPort':81},{'containerPort':80}]}]}}},"
	    "'status':{'conditions':[{'type':'Progressing','status':"
	    "'True'},{'type':'Available','status':'False'}]}}");
	/* Node status conditions and addresses by type. */
	expect(API_PATCH_STRATEGIC, &nodes,
	    "{'status':{'addresses':[{'type':'InternalIP','address':"
	    "'10.0.0.1'},{'type':'Hostname','address':'n'}],"
	    "'conditions':[{'type':'Ready','status':'True'}]}}",
	    "{'status':{'addresses':[{'type':'InternalIP','address':"
	    "'10.0.0.2'}],'conditions':[{'type':'Ready','status':"
	    "'False','reason':'KubeletNotReady'}]}}",
	    "{'status':{'addresses':[{'type':'InternalIP','address':"
	    "'10.0.0.2'},{'type':'Hostname','address':'n'}],"
	    "'conditions':[{'type':'Ready','status':'False',"
	    "'reason':'KubeletNotReady'}]}}");
}

/* $patch: replace in a list or a map, $patch: delete of a map. */
static void test_smp_patch_directive(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'spec':{'containers':[{'name':'a','image':'1'},"
	    "{'name':'b'}]}}",
	    "{'spec':{'containers':[{'name':'c','image':'3',"
	    "'args':null},{'$patch':'replace'}]}}",
	    "{'spec':{'containers':[{'name':'c','image':'3'}]}}");
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'metadata':{'labels':{'a':'1','b':'2'}}}",
	    "{'metadata':{'labels':{'$patch':'replace','c':'3',"
	    "'d':null}}}",
	    "{'metadata':{'labels':{'c':'3'}}}");
	expect(API_PATCH_STRATEGIC, &pods,
	    "{'spec':{'securityContext':{'runAsUser':1},'x':1}}",
	    "{'spec':{'securityContext':{'$patch':'delete'}}}",
	    "{'spec':{'securityContext':{},'x':1}}");
	/* Replace of the whole object. */
	expect(API_PATCH_STRATEGIC, &configmaps,
	    "{'metadata':{'name':'c'},'data':{'a':'1'}}",
	    "{'$patch':'replace','metadata':{'name':'c'}}",
	    "{'metadata':{'name':'c'}}");
}

/* $retainKeys: kubectl sends it for volume sources and the deployment
 * strategy, listing every key to keep. */
static void test_smp_retain_keys(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &deployments,
	    "{'spec':{'strategy':{'type':'RollingUpdate',"
	    "'rollingUpdate':{'maxSurge':1}}}}",
	    "{'spec':{'strategy':{'$retainKeys':['type'],"
	    "'type':'Recreate'}}}",
	    "{'spec':{'strategy':{'type':'Recreate'}}}");
	expect_err(API_PATCH_STRATEGIC, &deployments,
	    "{'spec':{'strategy':{}}}",
	    "{'spec':{'strategy':{'$retainKeys':['type'],"
	    "'rollingUpdate':{}}}}",
	    400, "BadRequest", "invalid patch format of retainKeys");
	expect_err(API_PATCH_STRATEGIC, &deployments,
	    "{'spec':{'strategy':{}}}",
	    "{'spec':{'strategy':{'$retainKeys':'type'}}}", 400, "BadRequest",
	    "invalid patch format of retainKeys");
}

/* Directives in values the object does not have yet act and vanish. */
static void test_smp_no_directive_leaks(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &deployments, "{'metadata':{'name':'d'}}",
	    "{'spec':{'strategy':{'$retainKeys':['type'],'type':'R',"
	    "'rollingUpdate':null},'template':{'spec':{"
	    "'$setElementOrder/containers':[{'name':'a'}],"
	    "'containers':[{'name':'a','env':[{'name':'X',"
	    "'$patch':'delete'},{'name':'Y','value':null}],"
	    "'$setElementOrder/ports':[{'containerPort':1}],"
	    "'ports':[{'containerPort':1}]},{'name':'gone',"
	    "'$patch':'delete'}],'volumes':[{'$retainKeys':['name'],"
	    "'name':'v'}],'$deleteFromPrimitiveList/x':['y']},"
	    "'metadata':{'$unknown':1,'labels':{'$patch':'replace',"
	    "'a':'b'}}}},'$bogus':{'a':1}}",
	    "{'metadata':{'name':'d'},'spec':{'strategy':{'type':'R'},"
	    "'template':{'spec':{'containers':[{'name':'a','env':"
	    "[{'name':'Y'}],'ports':[{'containerPort':1}]}],"
	    "'volumes':[{'name':'v'}]},'metadata':{'labels':"
	    "{'a':'b'}}}}}");
	/* A value of another type replaces, cleaned the same way. */
	expect(API_PATCH_STRATEGIC, &pods, "{'spec':{'containers':'x'}}",
	    "{'spec':{'containers':[{'name':'a','$patch':'delete'},"
	    "{'name':'b','x':null}]}}",
	    "{'spec':{'containers':[{'name':'b'}]}}");
}

static void test_smp_unknown_kind_and_nulls(void **state)
{
	(void)state;
	expect(API_PATCH_STRATEGIC, &configmaps,
	    "{'metadata':{'name':'c','finalizers':['f']},"
	    "'data':{'a':'1','b':'2'},'list':[1,2]}",
	    "{'metadata':{'finalizers':['g']},'data':{'a':null,"
	    "'c':'3'},'list':[3],'n':null}",
	    "{'metadata':{'name':'c','finalizers':['g','f']},"
	    "'data':{'b':'2','c':'3'},'list':[3]}");
	expect(API_PATCH_STRATEGIC, NULL, "{'a':{'b':1}}", "{'a':{'c':2}}",
	    "{'a':{'b':1,'c':2}}");
	/* A null patch decodes to an empty one. */
	expect(API_PATCH_STRATEGIC, &pods, "{'a':1}", "null", "{'a':1}");
}

/* --- strategic merge: errors ---------------------------------------------- */

static void test_smp_errors(void **state)
{
	static const char obj[] = "{'spec':{'containers':[{'name':'a'}]}}";

	(void)state;
	expect_err(API_PATCH_STRATEGIC, &pods, obj, "[]", 400, "BadRequest",
	    "json: cannot unmarshal array into Go value of type "
	    "map[string]interface {}");
	expect_err(API_PATCH_STRATEGIC, &pods, obj, "'x'", 400, "BadRequest",
	    "json: cannot unmarshal string into Go value of type "
	    "map[string]interface {}");
	expect_err_json(API_PATCH_STRATEGIC, &pods, obj, NULL, 400,
	    "BadRequest", "unexpected end of JSON input");
	/* Kubernetes passes these up as plain errors: 500, no reason. */
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'containers':[{'image':'nginx'}]}}", 500, "",
	    "map: map[image:nginx] does not contain declared merge key: name");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'containers':[{'$patch':'delete'}]}}", 500, "",
	    "map: map[$patch:delete] does not contain declared merge key: "
	    "name");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'$patch':'merge','a':'b'}}", 500, "",
	    "unknown patch type: merge in map: map[$patch:merge a:b]");
	expect_err(API_PATCH_STRATEGIC, &pods, obj, "{'spec':{'$patch':1}}",
	    500, "", "unknown patch type: %!s(int64=1) in map: map[$patch:1]");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'containers':[{'name':'a','$patch':'merge'}]}}", 500, "",
	    "merging lists cannot yet be specified in the patch");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'containers':[{'name':'a','$patch':'x'}]}}", 500, "",
	    "unknown patch type: x in map: map[$patch:x name:a]");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'containers':['a']}}", 500, "",
	    "list element types are not identical: [[map[name:a]] [a]]");
	expect_err(API_PATCH_STRATEGIC, &pods, "{'metadata':{}}",
	    "{'metadata':{'finalizers':[['a']]}}", 422, "Invalid", REJECTED);
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'$setElementOrderX/containers':[]}}", 400, "BadRequest",
	    "invalid patch format of setElementOrder list");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'$setElementOrder/containers':{}}}", 500, "",
	    "expected a []interface {}, but received a "
	    "map[string]interface {}");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'$setElementOrder/containers':[{'name':'a'}],"
	    "'containers':[{'name':'b'}]}}",
	    500, "",
	    "The order in patch list:\n[map[name:b]]\n doesn't match "
	    "$setElementOrder list:\n[map[name:a]]\n");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'spec':{'$setElementOrder/containers':[{'image':'a'}]}}", 500, "",
	    "map: map[image:a] does not contain declared merge key: "
	    "name");
	expect_err(API_PATCH_STRATEGIC, &pods, obj,
	    "{'metadata':{'$deleteFromPrimitiveList/finalizers':'a'}}", 400,
	    "BadRequest", "invalid patch format of primitive list");
}

/* --- server-side apply ---------------------------------------------------- */

static const char ssa_config[] =
    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
    "{'labels':{'app':'web'},'name':'web-ssa','namespace':"
    "'default'},'spec':{'replicas':2,'selector':{'matchLabels':"
    "{'app':'web'}},'template':{'metadata':{'labels':{'app':"
    "'web'}},'spec':{'containers':[{'image':'nginx:1.27',"
    "'name':'app','ports':[{'containerPort':80}]}]}}}}";

/* No live object: the configuration is the object (defaults come later). */
static void test_apply_create(void **state)
{
	(void)state;
	expect(API_PATCH_APPLY, &deployments, NULL, ssa_config, ssa_config);
}

/* A live object: the configuration merges in; lists by their keys. */
static void test_apply_update(void **state)
{
	static const char live[] =
	    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
	    "{'labels':{'app':'web'},'name':'web-ssa','namespace':"
	    "'default','uid':'u','managedFields':[{'manager':'kubectl'}]},"
	    "'spec':{'replicas':2,'selector':{'matchLabels':{'app':"
	    "'web'}},'template':{'metadata':{'labels':{'app':'web'}},"
	    "'spec':{'containers':[{'image':'nginx:1.27','name':'app',"
	    "'ports':[{'containerPort':80,'protocol':'TCP'}],"
	    "'imagePullPolicy':'IfNotPresent'},{'name':'side'}]}}},"
	    "'status':{'replicas':2}}";

	(void)state;
	expect(API_PATCH_APPLY, &deployments, live,
	    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
	    "{'name':'web-ssa','namespace':'default'},'spec':"
	    "{'replicas':3,'template':{'spec':{'containers':[{'name':"
	    "'app','image':'nginx:1.28','ports':[{'containerPort':80},"
	    "{'containerPort':443}]}]}}}}",
	    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
	    "{'labels':{'app':'web'},'name':'web-ssa','namespace':"
	    "'default','uid':'u','managedFields':[{'manager':'kubectl'}]},"
	    "'spec':{'replicas':3,'selector':{'matchLabels':{'app':"
	    "'web'}},'template':{'metadata':{'labels':{'app':'web'}},"
	    "'spec':{'containers':[{'image':'nginx:1.28','name':'app',"
	    "'ports':[{'containerPort':80,'protocol':'TCP'},"
	    "{'containerPort':443}],'imagePullPolicy':'IfNotPresent'},"
	    "{'name':'side'}]}}},'status':{'replicas':2}}");
	/* kubectl apply --server-side over a client-side-applied object
	 * also applies the last-applied annotation alone. */
	expect(API_PATCH_APPLY, &deployments,
	    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
	    "{'name':'web','annotations':{'kubectl.kubernetes.io/"
	    "last-applied-configuration':'old'}},'spec':{'replicas':3}}",
	    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
	    "{'annotations':{'kubectl.kubernetes.io/"
	    "last-applied-configuration':'new'},'name':'web'}}",
	    "{'apiVersion':'apps/v1','kind':'Deployment','metadata':"
	    "{'name':'web','annotations':{'kubectl.kubernetes.io/"
	    "last-applied-configuration':'new'}},'spec':{'replicas':3}}");
}

static void test_apply_errors(void **state)
{
	(void)state;
	expect_err(API_PATCH_APPLY, &deployments, NULL,
	    "{'apiVersion':'apps/v1beta1','kind':'Deployment'}", 400,
	    "BadRequest",
	    "Incorrect version specified in apply patch. "
	    "Specified patch version: apps/v1beta1, expected: apps/v1");
	expect_err(API_PATCH_APPLY, &pods, "{}", "{'kind':'Pod'}", 400,
	    "BadRequest",
	    "Incorrect version specified in apply patch. "
	    "Specified patch version: , expected: v1");
	expect_err(API_PATCH_APPLY, &pods, NULL, "null", 400, "BadRequest",
	    "Incorrect version specified in apply patch. "
	    "Specified patch version: , expected: v1");
	expect_err(API_PATCH_APPLY, &pods, NULL,
	    "{'apiVersion':'v1','kind':'Pod','metadata':"
	    "{'managedFields':[]}}",
	    400, "BadRequest", "metadata.managedFields must be nil");
	expect_err(API_PATCH_APPLY, &pods, NULL, "[1]", 400, "BadRequest",
	    "error decoding YAML: error unmarshaling JSON: while decoding "
	    "JSON: json: cannot unmarshal array into Go value of type "
	    "map[string]interface {}");
	expect_err(API_PATCH_APPLY, &pods, NULL,
	    "{'apiVersion':'v1','kind':'Service'}", 500, "",
	    "failed to create typed patch object (v1, Kind=Service): no "
	    "corresponding type for v1, Kind=Service");
}

/* --- the entry point ------------------------------------------------------ */

static void test_dispatch(void **state)
{
	(void)state;
	expect_err(99, &pods, "{}", "{}", 415, "UnsupportedMediaType", NULL);
	expect_err(API_PATCH_MERGE, &pods, NULL, "{}", 404, "NotFound", NULL);
	expect_err(API_PATCH_JSON, &pods, NULL, "[]", 404, "NotFound", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_patch_members),
		cmocka_unit_test(test_json_patch_arrays),
		cmocka_unit_test(test_json_patch_move_copy_test),
		cmocka_unit_test(test_json_patch_failures),
		cmocka_unit_test(test_json_patch_malformed),
		cmocka_unit_test(test_json_patch_too_many_ops),
		cmocka_unit_test(test_json_patch_copy_limit),
		cmocka_unit_test(test_json_patch_depth_limit),
		cmocka_unit_test(test_merge_patch_labels),
		cmocka_unit_test(test_merge_patch_rfc7386),
		cmocka_unit_test(test_merge_patch_malformed),
		cmocka_unit_test(test_smp_kubectl_apply_deployment),
		cmocka_unit_test(test_smp_kubectl_apply_service),
		cmocka_unit_test(test_smp_kubectl_apply_image),
		cmocka_unit_test(test_smp_cordon),
		cmocka_unit_test(test_smp_delete_container),
		cmocka_unit_test(test_smp_env_merge),
		cmocka_unit_test(test_smp_set_element_order),
		cmocka_unit_test(test_smp_primitive_sets),
		cmocka_unit_test(test_smp_merge_keys),
		cmocka_unit_test(test_smp_patch_directive),
		cmocka_unit_test(test_smp_retain_keys),
		cmocka_unit_test(test_smp_no_directive_leaks),
		cmocka_unit_test(test_smp_unknown_kind_and_nulls),
		cmocka_unit_test(test_smp_errors),
		cmocka_unit_test(test_apply_create),
		cmocka_unit_test(test_apply_update),
		cmocka_unit_test(test_apply_errors),
		cmocka_unit_test(test_dispatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

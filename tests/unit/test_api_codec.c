/* tests/unit/test_api_codec.c — the API server's body decoders and msgpack
 * conversions (plugins/apiserver/codec.c, yaml.c, proto.c, proto_schema.c).
 *
 * The protobuf fixtures in tests/unit/fixtures/protobuf/ are bodies real
 * kubectl 1.32/1.33 sent (captured with capture.py there); the JSON each
 * must decode to is what `kubectl create … --dry-run=client -o json`
 * prints for the same command, less creationTimestamp: null.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* --- helpers --------------------------------------------------------------------- */

/* Parse, and fail the test unless it worked. */
static json_t *parse_ok(const char *ct, const char *body)
{
	struct api_error e = { 0 };
	json_t *j = api_parse_body(ct, body, strlen(body), &e);
	if (j == NULL)
		fail_msg("%s: %d %s", body, e.code, e.message);
	assert_int_equal(e.code, 0);
	api_err_clear(&e);
	return j;
}

/* Parse, expect failure with `code`; the message must contain `needle`. */
static void parse_err(const char *ct, const void *body, size_t len, int code,
    const char *needle)
{
	struct api_error e = { 0 };
	/* an exact-size copy, so ASan sees any read past the end */
	char *copy = malloc(len ? len : 1);
	json_t *j;
	memcpy(copy, body, len);
	j = api_parse_body(ct, copy, len, &e);
	free(copy);
	if (j) {
		char *t = api_json_text(j, NULL);
		fail_msg("expected %d, parsed %s", code, t);
	}
	assert_int_equal(e.code, code);
	assert_non_null(e.reason);
	assert_true(e.message[0] != '\0');
	if (needle && strstr(e.message, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", e.message, needle);
	api_err_clear(&e);
}

static void assert_json_text(const json_t *j, const char *want)
{
	char *t = api_json_text(j, NULL);
	assert_non_null(t);
	if (strcmp(t, want) != 0)
		fail_msg("got  %s\nwant %s", t, want);
	free(t);
}

static void assert_parses_to(const char *ct, const char *body, const char *want)
{
	json_t *j = parse_ok(ct, body);
	assert_json_text(j, want);
	json_decref(j);
}

static char *nested(int depth, const char *open, const char *close)
{
	size_t o = strlen(open), c = strlen(close);
	char *s = malloc((size_t)depth * (o + c) + 1), *p = s;
	for (int i = 0; i < depth; i++, p += o)
		memcpy(p, open, o);
	for (int i = 0; i < depth; i++, p += c)
		memcpy(p, close, c);
	*p = '\0';
	return s;
}

static const char *JSON_CT = "application/json";
static const char *YAML_CT = "application/yaml";
static const char *PB_CT = "application/vnd.kubernetes.protobuf";

/* --- JSON ---------------------------------------------------------------------------- */

static void test_json_ok(void **state)
{
	(void)state;
	assert_parses_to(JSON_CT,
	    "{\"kind\":\"Pod\",\"a\":[1,-2,3.5,true,null]}",
	    "{\"kind\":\"Pod\",\"a\":[1,-2,3.5,true,null]}");
	assert_parses_to("application/json; charset=utf-8",
	    "[{\"op\":\"add\"}]", "[{\"op\":\"add\"}]");
	assert_parses_to(" Application/JSON ", "{}", "{}");
	assert_parses_to(NULL, "{\"z\":1,\"a\":2}", "{\"z\":1,\"a\":2}");
	assert_parses_to("", "{\"x\":\"\\u00e9\"}", "{\"x\":\"\xc3\xa9\"}");
	assert_parses_to("application/merge-patch+json", "{\"spec\":null}",
	    "{\"spec\":null}");
	assert_parses_to("application/json-patch+json",
	    "[{\"op\":\"remove\",\"path\":\"/a\"}]",
	    "[{\"op\":\"remove\",\"path\":\"/a\"}]");
	assert_parses_to("application/strategic-merge-patch+json",
	    "{\"$patch\":\"replace\"}", "{\"$patch\":\"replace\"}");
}

static void test_json_errors(void **state)
{
	(void)state;
	parse_err(JSON_CT, "", 0, 400,
	    "couldn't get version/kind; json parse "
	    "error: unexpected end of JSON input");
	parse_err(JSON_CT, "{\"a\":", 5, 400, "json parse error");
	parse_err(JSON_CT, "{\"a\":1}x", 8, 400, "json parse error");
	parse_err(JSON_CT, "\"str\"", 5, 400, NULL);
	parse_err(JSON_CT, "42", 2, 400, NULL);
	parse_err(JSON_CT, "null", 4, 400, NULL);
	parse_err(JSON_CT, "{\"a\":\"\xff\"}", 8, 400, NULL);
	parse_err(JSON_CT, "{\"a\":\"\xc3\"}", 8, 400, NULL);
	parse_err(JSON_CT, "{\"a\":\"\\u0000\"}", 13, 400, NULL);
	parse_err(JSON_CT, "{\"\xed\xa0\x80\":1}", 9, 400, NULL);
	parse_err("application/merge-patch+json", "{", 1, 400,
	    "error decoding patch");
	parse_err("text/plain", "{}", 2, 415,
	    "the body of the request was in "
	    "an unknown format - accepted media types include: "
	    "application/json, application/yaml, "
	    "application/vnd.kubernetes.protobuf");
	parse_err("application/xml", "<a/>", 4, 415, NULL);
}

static void test_json_depth(void **state)
{
	(void)state;
	char *ok = nested(100, "[", "]");
	char *deep = nested(101, "[", "]");
	char *huge = nested(200000, "{\"a\":", "}");
	json_t *j = parse_ok(JSON_CT, ok);
	json_decref(j);
	parse_err(JSON_CT, deep, strlen(deep), 400, "deeper than 100");
	parse_err(JSON_CT, huge, strlen(huge), 400, "deeper than 100");
	/* brackets inside strings do not count */
	assert_parses_to(JSON_CT,
	    "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"}",
	    "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[\"}");
	free(ok);
	free(deep);
	free(huge);
}

/* --- YAML ------------------------------------------------------------------------------ */

static void test_yaml_typing(void **state)
{
	(void)state;
	assert_parses_to(YAML_CT,
	    "n1: ~\nn2: null\nn3:\nn4: NULL\n"
	    "b1: true\nb2: yes\nb3: On\nb4: FALSE\nb5: no\nb6: off\nb7: y\n"
	    "i1: 10\ni2: -5\ni3: 0x1F\ni4: 0o17\ni5: 017\ni6: 1_000\ni7: +12\n"
	    "i8: 0b101\ni9: 0\n"
	    "f1: 1.5\nf2: .5\nf3: 1e3\nf4: -2.25\n"
	    "s1: abc\ns2: '123'\ns3: \"true\"\ns4: 1.2.3\ns5: 0x\ns6: 12abc\n"
	    "s7: 'null'\ns8: 08x\n",
	    "{\"n1\":null,\"n2\":null,\"n3\":null,\"n4\":null,"
	    "\"b1\":true,\"b2\":true,\"b3\":true,\"b4\":false,\"b5\":false,"
	    "\"b6\":false,\"b7\":true,"
	    "\"i1\":10,\"i2\":-5,\"i3\":31,\"i4\":15,\"i5\":15,\"i6\":1000,"
	    "\"i7\":12,\"i8\":5,\"i9\":0,"
	    "\"f1\":1.5,\"f2\":0.5,\"f3\":1000.0,\"f4\":-2.25,"
	    "\"s1\":\"abc\",\"s2\":\"123\",\"s3\":\"true\",\"s4\":\"1.2.3\","
	    "\"s5\":\"0x\",\"s6\":\"12abc\",\"s7\":\"null\",\"s8\":\"08x\"}");
	/* block scalars and tags; timestamps stay text, as go-yaml v2 hands
	 * them to an interface{} */
	assert_parses_to(YAML_CT,
	    "lit: |\n  a\n  b\nfold: >\n  c\n  d\nt1: !!str 42\nt2: !!int \"7\"\n"
	    "t3: !!float 2\nt4: !custom 42\nt5: !!null ~\nt6: ! 12\n"
	    "t7: !!timestamp 2024-01-02\nd: 2024-01-02\nu: .5_0\nv: 1_0.5\n",
	    "{\"lit\":\"a\\nb\\n\",\"fold\":\"c d\\n\",\"t1\":\"42\",\"t2\":7,"
	    "\"t3\":2.0,\"t4\":\"42\",\"t5\":null,\"t6\":\"12\","
	    "\"t7\":\"2024-01-02\",\"d\":\"2024-01-02\",\"u\":\".5_0\","
	    "\"v\":10.5}");
	/* keys become strings */
	assert_parses_to(YAML_CT,
	    "1: a\ntrue: b\n\"~\": c\n\"x\": d\n0x10: e\n",
	    "{\"1\":\"a\",\"true\":\"b\",\"~\":\"c\",\"x\":\"d\",\"16\":\"e\"}");
	/* int64 bounds: beyond them a number is a float */
	assert_parses_to(YAML_CT,
	    "a: 9223372036854775807\nb: -9223372036854775808\n"
	    "c: 9223372036854775808\n",
	    "{\"a\":9223372036854775807,\"b\":-9223372036854775808,"
	    "\"c\":9.2233720368547758e18}");
}

static void test_yaml_structure(void **state)
{
	(void)state;
	assert_parses_to(YAML_CT,
	    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
	    "  labels: {app: web, tier: \"1\"}\ndata:\n  k: v\nlist:\n- 1\n- [a, b]\n"
	    "- {}\n- []\n",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	    "\"x\",\"labels\":{\"app\":\"web\",\"tier\":\"1\"}},\"data\":{\"k\":"
	    "\"v\"},\"list\":[1,[\"a\",\"b\"],{},[]]}");
	/* a top-level sequence, a leading document marker, a trailing empty
	 * document and comments */
	assert_parses_to(YAML_CT, "# c\n---\n- a # x\n- b\n---\n",
	    "[\"a\",\"b\"]");
	/* anchors, aliases and merge keys, go-yaml v2's way: a merge
	 * overrides the keys before it, keys after it override the merge,
	 * and earlier maps in a merged sequence win */
	assert_parses_to(YAML_CT,
	    "base: &b {p: 1, q: 2}\nl: &l [1, 2]\n"
	    "m1:\n  <<: *b\n  q: 3\nm2:\n  q: 4\n  <<: *b\n"
	    "m3:\n  <<: [*b, {z: 5, p: 9}]\ncopy: *l\ns: &s str\nk:\n  *s : v\n",
	    "{\"base\":{\"p\":1,\"q\":2},\"l\":[1,2],\"m1\":{\"p\":1,\"q\":3},"
	    "\"m2\":{\"q\":2,\"p\":1},\"m3\":{\"z\":5,\"p\":1,\"q\":2},"
	    "\"copy\":[1,2],\"s\":\"str\",\"k\":{\"str\":\"v\"}}");
	/* YAML 1.1 as go-yaml v2 reads it: y and n are booleans, keys too */
	assert_parses_to(YAML_CT, "y: n\n", "{\"true\":false}");
	/* a quoted "<<" is an ordinary key */
	assert_parses_to(YAML_CT, "'<<': 1\n", "{\"<<\":1}");
	/* JSON with a YAML content type, and YAML flow style that is not JSON */
	assert_parses_to("application/apply-patch+yaml",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}");
	assert_parses_to("application/apply-patch+yaml", "{a: b, c: [1, d]}",
	    "{\"a\":\"b\",\"c\":[1,\"d\"]}");
	assert_parses_to(YAML_CT,
	    "\xef\xbb\xbf"
	    "a: \xc3\xa9\n",
	    "{\"a\":\"\xc3\xa9\"}");
}

static void test_yaml_errors(void **state)
{
	(void)state;
	/* clang-format off */
	const char *bad[] = {
		"a: b: c\n",               /* mapping values not allowed */
		"a: [1, 2\n",              /* unterminated flow */
		"a:\n\t- b\n",             /* tab indentation */
		"a: \"x\n",                /* unterminated quote */
		"a: *nosuch\n",            /* unknown anchor */
		"? [a]\n: b\n",            /* a sequence as a key */
		"~: null key\n",           /* a null key */
		"a: 1\n---\nb: 2\n",       /* two documents */
		"just a string\n",         /* a scalar document */
		"42\n",
		"",                        /* no document */
		"# only a comment\n",
		"a: .inf\n",               /* numbers JSON cannot carry */
		"a: -.Inf\n",
		"a: .nan\n",
		"a: 1e999\n",
		"a: !!int abc\n",          /* tags that do not fit */
		"a: !!bool 1\n",
		"a: !!null x\n",
		"a: !!binary aGk=\n",
		"a: \"nul\\0byte\"\n",
		"a: \xff\n",               /* invalid UTF-8 */
		"a: \xc3(\n",
		"<<: 1\n",                 /* a merge of a scalar */
		"a: &x [*x]\n",            /* an alias to itself */
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		parse_err(YAML_CT, bad[i], strlen(bad[i]), 400,
		    "error converting YAML to JSON: yaml: ");
	parse_err(YAML_CT, "a: b: c\n", 8, 400,
	    "yaml: line 1: mapping values "
	    "are not allowed in this context");
	parse_err(YAML_CT, "a: 1\n---\nb: 2\n", 13, 400, "more than one");
	parse_err(YAML_CT, "a: !!int abc\n", 13, 400,
	    "cannot decode !!str `abc` as a !!int");
	parse_err(YAML_CT, "a: .inf\n", 8, 400, "unsupported value: .inf");
}

static void test_yaml_bounds(void **state)
{
	(void)state;
	char *ok = nested(100, "[", "]");
	char *deep = nested(101, "[", "]");
	char *deep_block = malloc(101 * 202 + 16), *p = deep_block;
	json_t *j = parse_ok(YAML_CT, ok);
	json_decref(j);
	parse_err(YAML_CT, deep, strlen(deep), 400, "deeper than 100");
	for (int i = 0; i < 101; i++) {
		memset(p, ' ', (size_t)i * 2);
		p += i * 2;
		p += sprintf(p, "a:\n");
	}
	strcpy(p, "");
	parse_err(YAML_CT, deep_block, strlen(deep_block), 400,
	    "deeper than 100");
	/* "billion laughs": ten levels of ten aliases each */
	const char *laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
			     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
	parse_err(YAML_CT, laughs, strlen(laughs), 400, "excessive aliasing");
	/* an alias may not carry a deep anchor past the limit */
	char *anchor = nested(60, "[", "]");
	char *doc = malloc(strlen(anchor) * 2 + 64);
	sprintf(doc, "a: &d %s\nb: %s\n", anchor, anchor);
	j = parse_ok(YAML_CT, doc);
	json_decref(j);
	char *deeper = nested(50, "[", "]");
	deeper[strlen(deeper) / 2 - 1] = '\0';
	sprintf(doc, "a: &d %s\nb: %s*d", anchor, deeper);
	for (int i = 0; i < 49; i++)
		strcat(doc, "]");
	parse_err(YAML_CT, doc, strlen(doc), 400, "deeper than 100");
	free(ok);
	free(deep);
	free(deep_block);
	free(anchor);
	free(deeper);
	free(doc);
}

/* --- protobuf: what kubectl sends ----------------------------------------------------- */

static unsigned char *fixture(const char *name, size_t *len)
{
	char path[1024];
	const char *src = getenv("KUBUS_SRC");
	FILE *f;
	unsigned char *buf;
	long n;
	snprintf(path, sizeof path, "%s/tests/unit/fixtures/protobuf/%s.bin",
	    src ? src : ".", name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s (run from the source tree or set "
			 "KUBUS_SRC)",
		    path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static const struct {
	const char *name;
	const char *json;
} kubectl_bodies[] = {
	{ "namespace",
	    "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"ns1\"},\"spec\":{},\"status\":{}}" },
	{ "configmap",
	    "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"cm1\"},\"data\":{\"a\":\"b\","
	    "\"key2\":\"va lue\"}}" },
	{ "secret",
	    "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":"
	    "{\"name\":\"s1\"},\"data\":{\"bin\":\"AQI=\",\"user\":\"YWRtaW4=\"}}" },
	{ "secret-docker",
	    "{\"kind\":\"Secret\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"reg1\"},\"data\":{\".dockerconfigjson\":"
	    "\"eyJhdXRocyI6eyJyLmV4YW1wbGUuY29tIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3J"
	    "kIjoicCIsImF1dGgiOiJkVHB3In19fQ==\"},\"type\":"
	    "\"kubernetes.io/dockerconfigjson\"}" },
	{ "deployment",
	    "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\","
	    "\"metadata\":{\"name\":\"web\",\"labels\":{\"app\":\"web\"}},"
	    "\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":"
	    "\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
	    "\"spec\":{\"containers\":[{\"name\":\"nginx\",\"image\":"
	    "\"nginx:1.27\",\"ports\":[{\"containerPort\":80}],\"resources\":{}}]}},"
	    "\"strategy\":{}},\"status\":{}}" },
	{ "deployment-133",
	    "{\"kind\":\"Deployment\",\"apiVersion\":"
	    "\"apps/v1\",\"metadata\":{\"name\":\"web\",\"labels\":{\"app\":"
	    "\"web\"}},\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":"
	    "{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":"
	    "\"web\"}},\"spec\":{\"containers\":[{\"name\":\"nginx\",\"image\":"
	    "\"nginx:1.27\",\"ports\":[{\"containerPort\":80}],\"resources\":{}}]}},"
	    "\"strategy\":{}},\"status\":{}}" },
	{ "deployment-cmd",
	    "{\"kind\":\"Deployment\",\"apiVersion\":"
	    "\"apps/v1\",\"metadata\":{\"name\":\"job1\",\"labels\":{\"app\":"
	    "\"job1\"}},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":"
	    "{\"app\":\"job1\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":"
	    "\"job1\"}},\"spec\":{\"containers\":[{\"name\":\"busybox\",\"image\":"
	    "\"busybox\",\"command\":[\"sleep\",\"3600\"],\"resources\":{}}]}},"
	    "\"strategy\":{}},\"status\":{}}" },
	{ "deployment-multi",
	    "{\"kind\":\"Deployment\",\"apiVersion\":"
	    "\"apps/v1\",\"metadata\":{\"name\":\"multi\",\"labels\":{\"app\":"
	    "\"multi\"}},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":"
	    "{\"app\":\"multi\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":"
	    "\"multi\"}},\"spec\":{\"containers\":[{\"name\":\"busybox\","
	    "\"image\":\"busybox\",\"resources\":{}},{\"name\":\"nginx\","
	    "\"image\":\"nginx:1.27\",\"resources\":{}}]}},\"strategy\":{}},"
	    "\"status\":{}}" },
	{ "deployment-ns",
	    "{\"kind\":\"Deployment\",\"apiVersion\":"
	    "\"apps/v1\",\"metadata\":{\"name\":\"web2\",\"namespace\":\"team-a\","
	    "\"labels\":{\"app\":\"web2\"}},\"spec\":{\"replicas\":1,\"selector\":"
	    "{\"matchLabels\":{\"app\":\"web2\"}},\"template\":{\"metadata\":"
	    "{\"labels\":{\"app\":\"web2\"}},\"spec\":{\"containers\":[{\"name\":"
	    "\"nginx\",\"image\":\"nginx\",\"resources\":{}}]}},\"strategy\":{}},"
	    "\"status\":{}}" },
	{ "service-clusterip",
	    "{\"kind\":\"Service\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"svc1\",\"labels\":{\"app\":\"svc1\"}},"
	    "\"spec\":{\"ports\":[{\"name\":\"80-8080\",\"protocol\":\"TCP\","
	    "\"port\":80,\"targetPort\":8080},{\"name\":\"443-8443\",\"protocol\":"
	    "\"TCP\",\"port\":443,\"targetPort\":8443}],\"selector\":{\"app\":"
	    "\"svc1\"},\"type\":\"ClusterIP\"},\"status\":{\"loadBalancer\":{}}}" },
	{ "service-headless",
	    "{\"kind\":\"Service\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"hl\",\"labels\":{\"app\":\"hl\"}},\"spec\":"
	    "{\"selector\":{\"app\":\"hl\"},\"clusterIP\":\"None\",\"type\":"
	    "\"ClusterIP\"},\"status\":{\"loadBalancer\":{}}}" },
	{ "service-nodeport",
	    "{\"kind\":\"Service\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"np1\",\"labels\":{\"app\":\"np1\"}},"
	    "\"spec\":{\"ports\":[{\"name\":\"80-8080\",\"protocol\":\"TCP\","
	    "\"port\":80,\"targetPort\":8080,\"nodePort\":30080}],\"selector\":"
	    "{\"app\":\"np1\"},\"type\":\"NodePort\"},\"status\":{\"loadBalancer\":"
	    "{}}}" },
	{ "service-lb",
	    "{\"kind\":\"Service\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"lb1\",\"labels\":{\"app\":\"lb1\"}},"
	    "\"spec\":{\"ports\":[{\"name\":\"80-8080\",\"protocol\":\"TCP\","
	    "\"port\":80,\"targetPort\":8080}],\"selector\":{\"app\":\"lb1\"},"
	    "\"type\":\"LoadBalancer\"},\"status\":{\"loadBalancer\":{}}}" },
	{ "service-externalname",
	    "{\"kind\":\"Service\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"ext1\",\"labels\":{\"app\":\"ext1\"}},"
	    "\"spec\":{\"selector\":{\"app\":\"ext1\"},\"type\":\"ExternalName\","
	    "\"externalName\":\"example.com\"},\"status\":{\"loadBalancer\":{}}}" },
	{ "serviceaccount",
	    "{\"kind\":\"ServiceAccount\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"sa1\"}}" },
	{ "ssar",
	    "{\"kind\":\"SelfSubjectAccessReview\",\"apiVersion\":"
	    "\"authorization.k8s.io/v1\",\"metadata\":{},\"spec\":"
	    "{\"resourceAttributes\":{\"namespace\":\"default\",\"verb\":\"create\","
	    "\"resource\":\"pods\"}},\"status\":{\"allowed\":false}}" },
	{ "ssar-sub",
	    "{\"kind\":\"SelfSubjectAccessReview\",\"apiVersion\":"
	    "\"authorization.k8s.io/v1\",\"metadata\":{},\"spec\":"
	    "{\"resourceAttributes\":{\"namespace\":\"kube-system\",\"verb\":"
	    "\"get\",\"resource\":\"pods\",\"subresource\":\"log\"}},\"status\":"
	    "{\"allowed\":false}}" },
	{ "ssar-name",
	    "{\"kind\":\"SelfSubjectAccessReview\",\"apiVersion\":"
	    "\"authorization.k8s.io/v1\",\"metadata\":{},\"spec\":"
	    "{\"resourceAttributes\":{\"namespace\":\"default\",\"verb\":\"get\","
	    "\"group\":\"apps\",\"resource\":\"deployments\",\"name\":\"web\"}},"
	    "\"status\":{\"allowed\":false}}" },
	{ "ssar-all",
	    "{\"kind\":\"SelfSubjectAccessReview\",\"apiVersion\":"
	    "\"authorization.k8s.io/v1\",\"metadata\":{},\"spec\":"
	    "{\"resourceAttributes\":{\"namespace\":\"default\",\"verb\":\"*\","
	    "\"resource\":\"*\"}},\"status\":{\"allowed\":false}}" },
};

/* The kinds kubectl sends that have no schema here. */
static const struct {
	const char *name, *kind;
} kubectl_unsupported[] = {
	{ "job", "Job (batch/v1)" },
	{ "cronjob", "CronJob (batch/v1)" },
	{ "role", "Role (rbac.authorization.k8s.io/v1)" },
	{ "quota", "ResourceQuota (v1)" },
	{ "pdb", "PodDisruptionBudget (policy/v1)" },
	{ "priorityclass", "PriorityClass (scheduling.k8s.io/v1)" },
	{ "ingress", "Ingress (networking.k8s.io/v1)" },
	{ "ssrr", "SelfSubjectRulesReview (authorization.k8s.io/v1)" },
	{ "token", "TokenRequest (authentication.k8s.io/v1)" },
};

static void test_proto_kubectl(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof kubectl_bodies / sizeof kubectl_bodies[0];
	     i++) {
		struct api_error e = { 0 };
		size_t len;
		unsigned char *b = fixture(kubectl_bodies[i].name, &len);
		json_t *j = api_parse_body(PB_CT, b, len, &e);
		if (j == NULL)
			fail_msg("%s: %s", kubectl_bodies[i].name, e.message);
		assert_json_text(j, kubectl_bodies[i].json);
		json_decref(j);
		free(b);
	}
}

static void test_proto_unsupported(void **state)
{
	(void)state;
	for (size_t i = 0;
	     i < sizeof kubectl_unsupported / sizeof kubectl_unsupported[0];
	     i++) {
		size_t len;
		unsigned char *b = fixture(kubectl_unsupported[i].name, &len);
		parse_err(PB_CT, b, len, 415, kubectl_unsupported[i].kind);
		free(b);
	}
	size_t len;
	unsigned char *b = fixture("job", &len);
	struct api_error e = { 0 };
	assert_null(api_parse_body(PB_CT, b, len, &e));
	assert_string_equal(e.reason, "UnsupportedMediaType");
	assert_string_equal(e.message,
	    "the body of the request was in an "
	    "unknown format - Job (batch/v1) is not accepted as "
	    "application/vnd.kubernetes.protobuf; accepted media types "
	    "include: application/json, application/yaml");
	free(b);
}

/* Every prefix of every body, and every single-byte change of it: a clean
 * answer each time (a prefix that ends on a field boundary is a valid,
 * smaller message). */
static void check_robust(const unsigned char *b, size_t len)
{
	struct api_error e = { 0 };
	unsigned char *copy = malloc(len ? len : 1);
	memcpy(copy, b, len);
	json_t *j = api_parse_body(PB_CT, copy, len, &e);
	if (j) {
		assert_true(json_is_object(j));
		assert_int_equal(e.code, 0);
		json_decref(j);
	} else {
		assert_true(e.code == 400 || e.code == 415);
		assert_true(e.message[0] != '\0');
	}
	api_err_clear(&e);
	free(copy);
}

static void test_proto_truncated_and_flipped(void **state)
{
	(void)state;
	const char *names[] = { "deployment", "service-nodeport", "secret",
		"ssar-sub", "job" };
	for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
		size_t len;
		unsigned char *b = fixture(names[n], &len);
		for (size_t cut = 0; cut < len; cut++) {
			check_robust(b, cut);
			if (cut < 4)
				continue;
			/* cut inside the object: always an error */
		}
		for (size_t i = 0; i < len; i++) {
			unsigned char save = b[i];
			for (unsigned x = 1; x < 256; x <<= 1) {
				b[i] = save ^ (unsigned char)x;
				check_robust(b, len);
			}
			b[i] = 0xff;
			check_robust(b, len);
			b[i] = save;
		}
		free(b);
	}
	/* cut inside the raw object: its length prefix overruns */
	size_t len;
	unsigned char *b = fixture("deployment", &len);
	for (size_t cut = 30; cut < len - 4; cut++)
		parse_err(PB_CT, b, cut, 400, "unrecognized");
	free(b);
}

/* --- protobuf: hand-made bodies ------------------------------------------------------- */

struct pbw {
	unsigned char buf[4096];
	size_t n;
};

static void w_varint(struct pbw *w, uint64_t v)
{
	do {
		w->buf[w->n++] =
		    (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void w_key(struct pbw *w, unsigned num, unsigned wt)
{
	w_varint(w, (uint64_t)num << 3 | wt);
}

static void w_int(struct pbw *w, unsigned num, uint64_t v)
{
	w_key(w, num, 0);
	w_varint(w, v);
}

static void w_bytes(struct pbw *w, unsigned num, const void *p, size_t len)
{
	w_key(w, num, 2);
	w_varint(w, len);
	memcpy(w->buf + w->n, p, len);
	w->n += len;
}

static void w_str(struct pbw *w, unsigned num, const char *s)
{
	w_bytes(w, num, s, strlen(s));
}

static void w_msg(struct pbw *w, unsigned num, const struct pbw *m)
{
	w_bytes(w, num, m->buf, m->n);
}

static void w_map(struct pbw *w, unsigned num, const char *k, const char *v)
{
	struct pbw e = { .n = 0 };
	w_str(&e, 1, k);
	w_str(&e, 2, v);
	w_msg(w, num, &e);
}

/* "k8s\0" + Unknown{typeMeta, raw} */
static void w_envelope(struct pbw *out, const char *av, const char *kind,
    const struct pbw *raw)
{
	struct pbw tm = { .n = 0 };
	memcpy(out->buf, "k8s", 4);
	out->n = 4;
	w_str(&tm, 1, av);
	w_str(&tm, 2, kind);
	w_msg(out, 1, &tm);
	w_msg(out, 2, raw);
	w_str(out, 3, "");
	w_str(out, 4, "");
}

static json_t *decode_ok(const struct pbw *w)
{
	struct api_error e = { 0 };
	json_t *j = api_parse_body(PB_CT, w->buf, w->n, &e);
	if (j == NULL)
		fail_msg("%d %s", e.code, e.message);
	return j;
}

static void test_proto_metadata(void **state)
{
	(void)state;
	struct pbw meta = { .n = 0 }, owner = { .n = 0 }, ts = { .n = 0 },
		   mf = { .n = 0 }, fields = { .n = 0 }, obj = { .n = 0 },
		   body = { .n = 0 };
	w_str(&meta, 1, "cm");
	w_str(&meta, 3, "ns");
	w_str(&meta, 5, "0b5c-uid");
	w_str(&meta, 6, "42");
	w_int(&meta, 7, 3);
	w_int(&ts, 1, 1700000000);
	w_msg(&meta, 8, &ts);
	w_int(&meta, 10, 0); /* a pointer: zero stays */
	w_map(&meta, 11, "app", "web");
	w_map(&meta, 11, "tier", "front");
	w_map(&meta, 12, "note", "h\xc3\xa9llo");
	w_str(&owner, 5, "apps/v1");
	w_str(&owner, 1, "ReplicaSet");
	w_str(&owner, 3, "rs1");
	w_str(&owner, 4, "u1");
	w_int(&owner, 6, 1);
	w_msg(&meta, 13, &owner);
	w_str(&meta, 14, "a/b");
	w_str(&meta, 14, "c");
	w_str(&mf, 1, "kubectl");
	w_str(&mf, 2, "Update");
	w_str(&mf, 6, "FieldsV1");
	w_str(&fields, 1, "{\"f:data\":{\".\":{}}}");
	w_msg(&mf, 7, &fields);
	w_msg(&meta, 17, &mf);
	w_msg(&obj, 1, &meta);
	w_map(&obj, 2, "k", "v");
	w_int(&obj, 4, 1);
	w_envelope(&body, "v1", "ConfigMap", &obj);
	json_t *j = decode_ok(&body);
	assert_json_text(j,
	    "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"cm\",\"namespace\":\"ns\",\"uid\":"
	    "\"0b5c-uid\",\"resourceVersion\":\"42\",\"generation\":3,"
	    "\"creationTimestamp\":\"2023-11-14T22:13:20Z\","
	    "\"deletionGracePeriodSeconds\":0,\"labels\":{\"app\":\"web\","
	    "\"tier\":\"front\"},\"annotations\":{\"note\":\"h\xc3\xa9llo\"},"
	    "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":"
	    "\"ReplicaSet\",\"name\":\"rs1\",\"uid\":\"u1\",\"controller\":true}],"
	    "\"finalizers\":[\"a/b\",\"c\"],\"managedFields\":[{\"manager\":"
	    "\"kubectl\",\"operation\":\"Update\",\"fieldsType\":\"FieldsV1\","
	    "\"fieldsV1\":{\"f:data\":{\".\":{}}}}]},\"data\":{\"k\":\"v\"},"
	    "\"immutable\":true}");
	json_decref(j);
}

static void test_proto_podspec(void **state)
{
	(void)state;
	struct pbw c = { .n = 0 }, port = { .n = 0 }, res = { .n = 0 },
		   q = { .n = 0 }, qe = { .n = 0 }, env = { .n = 0 },
		   probe = { .n = 0 }, get = { .n = 0 }, ios = { .n = 0 },
		   ps = { .n = 0 }, sc = { .n = 0 }, tmpl = { .n = 0 },
		   spec = { .n = 0 }, strat = { .n = 0 }, ru = { .n = 0 },
		   is2 = { .n = 0 }, obj = { .n = 0 }, body = { .n = 0 },
		   vol = { .n = 0 }, vs = { .n = 0 }, cmv = { .n = 0 },
		   lor = { .n = 0 }, handler = { .n = 0 };
	w_str(&c, 1, "app");
	w_str(&c, 2, "nginx:1.27");
	w_str(&c, 3, "sh");
	w_str(&c, 4, "-c");
	w_str(&c, 4, "echo hi");
	w_int(&port, 3, 8080);
	w_str(&port, 4, "TCP");
	w_msg(&c, 6, &port);
	w_str(&env, 1, "MODE");
	w_str(&env, 2, "fast");
	w_msg(&c, 7, &env);
	w_str(&q, 1, "250m");
	w_str(&qe, 1, "cpu");
	w_msg(&qe, 2, &q);
	w_msg(&res, 1, &qe);
	w_msg(&c, 8, &res);
	w_str(&ios, 3, "http");
	w_int(&ios, 1, 1);
	w_str(&get, 1, "/healthz");
	w_msg(&get, 2, &ios);
	w_msg(&handler, 2, &get);
	w_msg(&probe, 1, &handler); /* ProbeHandler, inlined */
	w_int(&probe, 2, 5);
	w_msg(&c, 10, &probe);
	w_int(&c, 16, 0); /* stdin false: omitted */
	w_msg(&ps, 2, &c);
	w_str(&ps, 3, "Always");
	w_int(&ps, 4, 30);
	w_str(&lor, 1, "cfg");
	w_msg(&cmv, 1, &lor);
	w_int(&cmv, 3, 0644);
	w_msg(&vs, 19, &cmv);
	w_str(&vol, 1, "config");
	w_msg(&vol, 2, &vs);
	w_msg(&ps, 1, &vol);
	/* supplementalGroups packed, as a proto3 writer would */
	struct pbw packed = { .n = 0 };
	w_varint(&packed, 1000);
	w_varint(&packed, 2000);
	w_msg(&sc, 4, &packed);
	w_int(&sc, 2, 0); /* runAsUser 0: a pointer, kept */
	w_msg(&ps, 14, &sc);
	w_msg(&tmpl, 2, &ps);
	w_int(&spec, 1, (uint64_t)-1); /* -1 as a ten-byte varint */
	w_msg(&spec, 3, &tmpl);
	w_str(&is2, 3, "25%");
	w_int(&is2, 1, 1);
	w_msg(&ru, 1, &is2);
	w_str(&strat, 1, "RollingUpdate");
	w_msg(&strat, 2, &ru);
	w_msg(&spec, 4, &strat);
	w_msg(&obj, 2, &spec);
	w_envelope(&body, "apps/v1", "Deployment", &obj);
	json_t *j = decode_ok(&body);
	assert_json_text(j,
	    "{\"kind\":\"Deployment\",\"apiVersion\":"
	    "\"apps/v1\",\"spec\":{\"replicas\":-1,\"template\":{\"spec\":"
	    "{\"containers\":[{\"name\":\"app\",\"image\":\"nginx:1.27\","
	    "\"command\":[\"sh\"],\"args\":[\"-c\",\"echo hi\"],\"ports\":"
	    "[{\"containerPort\":8080,\"protocol\":\"TCP\"}],\"env\":[{\"name\":"
	    "\"MODE\",\"value\":\"fast\"}],\"resources\":{\"limits\":{\"cpu\":"
	    "\"250m\"}},\"livenessProbe\":{\"httpGet\":{\"path\":\"/healthz\","
	    "\"port\":\"http\"},\"initialDelaySeconds\":5}}],\"restartPolicy\":"
	    "\"Always\",\"terminationGracePeriodSeconds\":30,\"volumes\":"
	    "[{\"name\":\"config\",\"configMap\":{\"name\":\"cfg\","
	    "\"defaultMode\":420}}],\"securityContext\":{\"supplementalGroups\":"
	    "[1000,2000],\"runAsUser\":0}}},\"strategy\":{\"type\":"
	    "\"RollingUpdate\",\"rollingUpdate\":{\"maxUnavailable\":\"25%\"}}}}");
	json_decref(j);
}

static void test_proto_wire_details(void **state)
{
	(void)state;
	struct pbw obj = { .n = 0 }, meta = { .n = 0 }, body = { .n = 0 },
		   grp = { .n = 0 }, sub = { .n = 0 };
	/* unknown fields of every wire type are skipped */
	w_str(&meta, 1, "a");
	w_int(&meta, 99, 12345);
	w_key(&meta, 98, 1);
	memcpy(meta.buf + meta.n, "12345678", 8);
	meta.n += 8;
	w_key(&meta, 97, 5);
	memcpy(meta.buf + meta.n, "1234", 4);
	meta.n += 4;
	w_str(&meta, 96, "skip me");
	w_key(&meta, 95, 3); /* a group, with a group inside */
	w_int(&meta, 1, 7);
	w_key(&meta, 94, 3);
	w_key(&meta, 94, 4);
	w_key(&meta, 95, 4);
	w_msg(&obj, 1, &meta);
	/* a repeated non-repeated message merges; the last scalar wins */
	w_str(&sub, 2, "second");
	w_msg(&obj, 1, &sub);
	w_str(&obj, 3, "Opaque");
	w_str(&obj, 3, "kubernetes.io/tls");
	w_bytes(&obj, 2, "", 0); /* an empty map entry */
	w_envelope(&body, "v1", "Secret", &obj);
	/* unknown envelope fields too */
	w_int(&body, 9, 1);
	json_t *j = decode_ok(&body);
	assert_json_text(j,
	    "{\"kind\":\"Secret\",\"apiVersion\":\"v1\","
	    "\"metadata\":{\"name\":\"a\",\"generateName\":\"second\"},"
	    "\"type\":\"kubernetes.io/tls\",\"data\":{\"\":\"\"}}");
	json_decref(j);
	(void)grp;
}

static void expect_pb_err(const struct pbw *w, int code, const char *needle)
{
	parse_err(PB_CT, w->buf, w->n, code, needle);
}

static void test_proto_errors(void **state)
{
	(void)state;
	struct pbw obj = { .n = 0 }, body = { .n = 0 }, meta = { .n = 0 };
	parse_err(PB_CT, "", 0, 400,
	    "does not appear to be a protobuf message");
	parse_err(PB_CT, "{\"kind\":\"Pod\"}", 14, 400, "expected prefix");
	parse_err(PB_CT, "k8s", 3, 400, NULL);
	parse_err(PB_CT, "k8s\0", 4, 400, "Object 'Kind' is missing");
	/* wrong wire type for a known field */
	w_int(&obj, 1, 5);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400,
	    "Namespace in version \"v1\" cannot be "
	    "handled as a Namespace: proto: wrong wireType = 0 for field "
	    "metadata");
	/* a varint longer than 64 bits */
	obj.n = 0;
	w_key(&obj, 7, 0);
	memcpy(obj.buf + obj.n, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
	obj.n += 10;
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "integer overflow");
	/* field number 0 */
	obj.n = 0;
	w_int(&obj, 0, 1);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "illegal tag 0");
	/* an end group out of nowhere */
	obj.n = 0;
	w_key(&obj, 5, 4);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "end group");
	/* wire types 6 and 7 do not exist */
	obj.n = 0;
	w_key(&obj, 5, 6);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "illegal wireType 6");
	/* invalid UTF-8 and NUL in strings */
	obj.n = 0;
	w_str(&meta, 1, "bad\xff");
	w_msg(&obj, 1, &meta);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "invalid UTF-8");
	obj.n = meta.n = 0;
	w_bytes(&meta, 1, "a\0b", 3);
	w_msg(&obj, 1, &meta);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "NUL");
	/* a group that never ends */
	obj.n = 0;
	w_key(&obj, 50, 3);
	w_int(&obj, 1, 1);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "unexpected EOF");
	/* bad JSON in FieldsV1 */
	struct pbw mf = { .n = 0 }, f = { .n = 0 };
	obj.n = meta.n = 0;
	w_str(&f, 1, "{not json");
	w_msg(&mf, 7, &f);
	w_msg(&meta, 17, &mf);
	w_msg(&obj, 1, &meta);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "FieldsV1");
	/* a timestamp beyond year 9999 */
	struct pbw ts = { .n = 0 };
	obj.n = meta.n = 0;
	w_int(&ts, 1, 253402300800ULL);
	w_msg(&meta, 8, &ts);
	w_msg(&obj, 1, &meta);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, "timestamp");
	/* gzip'd or JSON inside the envelope */
	obj.n = 0;
	w_envelope(&body, "v1", "Namespace", &obj);
	body.n -= 4;
	w_str(&body, 3, "gzip");
	w_str(&body, 4, "");
	expect_pb_err(&body, 415, "Namespace (v1)");
	/* deep nesting of an unknown message is skipped without recursion;
	 * deep groups are bounded */
	obj.n = 0;
	for (int i = 0; i < 150; i++)
		w_key(&obj, 60, 3);
	w_envelope(&body, "v1", "Namespace", &obj);
	expect_pb_err(&body, 400, NULL);
}

/* --- msgpack ---------------------------------------------------------------------------- */

static const char *sample =
    "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p\","
    "\"labels\":{\"z\":\"1\",\"a\":\"2\"},\"generation\":9007199254740993},"
    "\"spec\":{\"n\":-129,\"big\":-9223372036854775808,\"max\":"
    "9223372036854775807,\"f\":0.25,\"neg\":-2.5,\"t\":true,\"fa\":false,"
    "\"nil\":null,\"e\":{},\"ea\":[],\"s\":\"\",\"u\":\"\xe2\x82\xac\xf0\x9f"
    "\x98\x80\",\"arr\":[0,127,128,255,256,65535,65536,4294967295,"
    "4294967296,-1,-32,-33,-128,-32768,-32769]}}";

static void test_mp_roundtrip(void **state)
{
	(void)state;
	json_t *j = parse_ok(JSON_CT, sample), *back;
	char *mp;
	size_t len;
	assert_int_equal(api_mp_encode(j, &mp, &len), 0);
	back = api_mp_decode(mp, len);
	assert_non_null(back);
	assert_true(json_equal(j, back));
	assert_json_text(back, sample);
	/* integers stay integers, reals reals */
	assert_true(json_is_integer(api_get(back, "metadata.generation")));
	assert_true(json_is_real(api_get(back, "spec.f")));
	json_decref(back);

	/* through msgpack-c's own objects */
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, mp, len, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	back = api_json_from_mp(&u.data);
	assert_non_null(back);
	assert_true(json_equal(j, back));
	assert_json_text(back, sample);
	json_decref(back);
	msgpack_unpacked_destroy(&u);

	/* api_mp_from_json into a packer of the caller's */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	assert_int_equal(api_mp_from_json(&pk, j), 0);
	assert_int_equal(api_mp_from_json(&pk,
			     json_array_get(api_get(j, "spec.arr"), 3)),
	    0);
	back = api_mp_decode(sb.data, sb.size);
	assert_non_null(back);
	assert_true(json_equal(json_array_get(back, 0), j));
	assert_int_equal(json_integer_value(json_array_get(back, 1)), 255);
	json_decref(back);
	msgpack_sbuffer_destroy(&sb);
	free(mp);
	json_decref(j);
}

static void test_mp_deep(void **state)
{
	(void)state;
	/* deeper than msgpack-c's 32-level unpack stack */
	char *text = nested(50, "{\"a\":[", "]}");
	json_t *j = parse_ok(JSON_CT, text), *back;
	char *mp;
	size_t len;
	assert_int_equal(api_mp_encode(j, &mp, &len), 0);
	back = api_mp_decode(mp, len);
	assert_non_null(back);
	assert_true(json_equal(j, back));
	json_decref(back);
	free(mp);
	json_decref(j);
	free(text);
	/* a hostile depth is refused, not recursed into */
	unsigned char *deep = malloc(100000);
	memset(deep, 0x91, 99999);
	deep[99999] = 0xc0;
	assert_null(api_mp_decode(deep, 100000));
	free(deep);
}

/* api_mp_with_rv: the stored bytes with a resourceVersion give what
 * decoding them, setting it and encoding again gives (the watch cache
 * made each event's msgpack that way before). */
static json_t *rv_value(unsigned *seed, int depth)
{
	unsigned r = (unsigned)rand_r(seed);
	char b[300];
	switch (r % (depth > 3 ? 6 : 8)) {
	case 0:
		return json_integer((json_int_t)rand_r(seed) * (r & 8 ? -1 : 1) *
		    (r & 16 ? 100003 : 1));
	case 1: {
		size_t n = (size_t)rand_r(seed) % (r & 32 ? 290 : 20);
		for (size_t i = 0; i < n; i++)
			b[i] = (char)('a' + rand_r(seed) % 26);
		b[n] = '\0';
		return json_string(b);
	}
	case 2: return json_true();
	case 3: return json_null();
	case 4: return json_real(rand_r(seed) / 3.0);
	case 5: return json_false();
	case 6: {
		json_t *o = json_object();
		for (int i = (int)(r >> 8) % 20; i > 0; i--) {
			snprintf(b, sizeof b, "k%d", rand_r(seed) % 40);
			json_object_set_new(o, b, rv_value(seed, depth + 1));
		}
		return o;
	}
	default: {
		json_t *a = json_array();
		for (int i = (int)(r >> 8) % 20; i > 0; i--)
			json_array_append_new(a, rv_value(seed, depth + 1));
		return a;
	}
	}
}

static void test_mp_with_rv(void **state)
{
	(void)state;
	unsigned seed = 7;
	int spliced = 0, refused = 0;
	for (int it = 0; it < 3000; it++) {
		json_t *o = json_object();
		char k[32];
		for (int i = rand_r(&seed) % 6; i > 0; i--) {
			snprintf(k, sizeof k, "t%d", rand_r(&seed) % 10);
			json_object_set_new(o, k, rv_value(&seed, 1));
		}
		int mode = it % 10;
		if (mode < 8) {
			/* 14..17 entries cross fixmap -> map16 with the new one */
			json_t *md = json_object();
			int m = it % 3 ? rand_r(&seed) % 40 : 14 + it % 4;
			for (int i = 0; i < m; i++) {
				snprintf(k, sizeof k, "m%d", i);
				json_object_set_new(md, k, rv_value(&seed, 2));
			}
			if (mode == 7)
				json_object_set_new(md, "resourceVersion", json_string("5"));
			json_object_set_new(o, "metadata", md);
		} else if (mode == 8) {
			json_object_set_new(o, "metadata", json_string("x"));
		}
		char *data, *want, *got = NULL;
		size_t len, wlen, glen = 0;
		assert_int_equal(api_mp_encode(o, &data, &len), 0);
		int64_t rev = it % 3 ? rand_r(&seed) : (int64_t)rand_r(&seed) * 1000003;
		json_t *d = api_mp_decode(data, len);
		json_t *md = json_object_get(d, "metadata");
		snprintf(k, sizeof k, "%lld", (long long)rev);
		if (json_is_object(md))
			json_object_set_new(md, "resourceVersion", json_string(k));
		assert_int_equal(api_mp_encode(d, &want, &wlen), 0);
		if (api_mp_with_rv(data, len, rev, &got, &glen) == 0) {
			assert_true(json_is_object(md) && mode != 7);
			assert_int_equal(glen, wlen);
			assert_memory_equal(got, want, wlen);
			spliced++;
		} else {
			/* no metadata map, or one with a version already */
			assert_true(!json_is_object(md) || mode == 7);
			refused++;
		}
		free(got);
		free(want);
		free(data);
		json_decref(d);
		json_decref(o);
	}
	assert_true(spliced > 2000 && refused > 500);
	char *out = NULL;
	size_t olen;
	assert_int_not_equal(api_mp_with_rv("\x81\xa8metadata\x80", 11, -1, &out, &olen), 0);
	assert_int_not_equal(api_mp_with_rv("\x81\xa8metadata\x81", 11, 1, &out, &olen), 0);
	assert_int_equal(api_mp_with_rv("\x81\xa8metadata\x80", 11, 42, &out, &olen), 0);
	json_t *j = api_mp_decode(out, olen);
	assert_string_equal(api_get_str(j, "metadata.resourceVersion"), "42");
	json_decref(j);
	free(out);
}

static void test_mp_bad_input(void **state)
{
	(void)state;
	json_t *j = parse_ok(JSON_CT, sample);
	char *mp;
	size_t len;
	assert_int_equal(api_mp_encode(j, &mp, &len), 0);
	/* every truncation fails cleanly */
	for (size_t cut = 0; cut < len; cut++) {
		unsigned char *c = malloc(cut ? cut : 1);
		memcpy(c, mp, cut);
		assert_null(api_mp_decode(c, cut));
		free(c);
	}
	/* trailing bytes */
	char *more = malloc(len + 1);
	memcpy(more, mp, len);
	more[len] = (char)0xc0;
	assert_null(api_mp_decode(more, len + 1));
	free(more);
	free(mp);
	json_decref(j);
	/* ext types, the never-used 0xc1, invalid UTF-8, non-string keys */
	assert_null(api_mp_decode("\xd4\x01\x02", 3));
	assert_null(api_mp_decode("\xc7\x01\x05\x00", 4));
	assert_null(api_mp_decode("\xc1", 1));
	assert_null(api_mp_decode("\xa1\xff", 2));
	assert_null(api_mp_decode("\x81\x01\x02", 3));
	/* NUL in a string or a key, which no JSON or YAML body can carry */
	assert_null(api_mp_decode("\xa2\x61\x00", 3));
	assert_null(api_mp_decode("\x81\xa1\x00\xc0", 4));
	assert_null(api_mp_decode("\xdd\xff\xff\xff\xff", 5));
	assert_null(api_mp_decode(NULL, 0));
	/* bin is text that lost its str type on the way */
	json_t *b = api_mp_decode("\x81\xc4\x01k\xc4\x02hi", 8);
	assert_non_null(b);
	assert_json_text(b, "{\"k\":\"hi\"}");
	json_decref(b);
	/* float32, uint64 beyond int64 */
	b = api_mp_decode("\x92\xca\x3f\x80\x00\x00\xcf\xff\xff\xff\xff\xff\xff"
			  "\xff\xff",
	    15);
	assert_non_null(b);
	assert_true(json_real_value(json_array_get(b, 0)) == 1.0);
	assert_true(json_is_real(json_array_get(b, 1)));
	json_decref(b);
}

static void test_json_text(void **state)
{
	(void)state;
	json_t *j = json_object();
	size_t len;
	json_object_set_new(j, "zeta", json_integer(1));
	json_object_set_new(j, "alpha", json_pack("[s,b,n]", "x/y", 1));
	json_object_set_new(j, "m", json_string("\xc3\xa9\"\n"));
	char *t = api_json_text(j, &len);
	assert_string_equal(t,
	    "{\"zeta\":1,\"alpha\":[\"x/y\",true,null],"
	    "\"m\":\"\xc3\xa9\\\"\\n\"}");
	assert_int_equal(len, strlen(t));
	free(t);
	json_decref(j);
	assert_null(api_json_text(NULL, &len));
	assert_int_equal(len, 0);
}

/* api_mp_json writes what api_json_text(api_mp_decode()) does, byte for
 * byte, for every kind of value an object holds; NULL where that has no
 * text (bad input) or for reals, which are left to jansson. */
static void same_text(const json_t *j)
{
	char *mp, *want, *got;
	size_t len, wl, gl = 0;
	assert_int_equal(api_mp_encode(j, &mp, &len), 0);
	json_t *back = api_mp_decode(mp, len);
	assert_non_null(back);
	want = api_json_text(back, &wl);
	got = api_mp_json(mp, len, &gl);
	assert_non_null(want);
	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(gl, wl);
	free(want);
	free(got);
	free(mp);
	json_decref(back);
}

static void test_mp_json(void **state)
{
	(void)state;
	json_t *s0 = parse_ok(JSON_CT, sample);
	json_object_del(json_object_get(s0, "spec"), "f"); /* reals */
	json_object_del(json_object_get(s0, "spec"), "neg");
	same_text(s0);
	json_decref(s0);
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[], s:{}, s:[n,b,b,I,I,I,i]}",
	    "quotes", "a\"b\\c/d", "controls", "\b\f\n\r\t\x01\x1f\x7f",
	    "utf8", "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf",
	    "empty", "", "", "empty key", "k\"\n", "escaped key", "arr", "obj",
	    "scalars", 1, 0, (json_int_t)INT64_MAX, (json_int_t)INT64_MIN, (json_int_t)-1, 0);
	assert_non_null(j);
	same_text(j);
	json_t *deep = json_string("x");
	for (int i = 0; i < 40; i++)
		deep = json_pack("{s:[o]}", "d", deep);
	same_text(deep);
	json_t *alone = json_string("alone"), *num = json_integer(-5);
	same_text(alone);
	same_text(num);
	json_decref(alone);
	json_decref(num);
	json_decref(deep);
	json_decref(j);
	/* a fixed map {"a":[1,"\u00e9",nil]} spelled out */
	size_t len;
	char *t = api_mp_json("\x81\xa1" "a\x93\x01\xa2\xc3\xa9\xc0", 9, &len);
	assert_non_null(t);
	assert_string_equal(t, "{\"a\":[1,\"\xc3\xa9\",null]}");
	assert_int_equal(len, strlen(t));
	free(t);
	/* bin keys and values read as text, as api_mp_decode reads them */
	t = api_mp_json("\x81\xc4\x01k\xc4\x02hi", 8, &len);
	assert_string_equal(t, "{\"k\":\"hi\"}");
	free(t);
	/* reals (jansson formats them), NUL, invalid UTF-8 (overlong,
	 * surrogate, past U+10FFFF, cut short), non-string keys, ext,
	 * trailing bytes, nothing */
	assert_null(api_mp_json("\xca\x3f\x80\x00\x00", 5, &len));
	assert_null(api_mp_json("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, &len));
	assert_null(api_mp_json("\xa2\x61\x00", 3, &len));
	assert_null(api_mp_json("\x81\xa1\x00\xc0", 4, &len));
	assert_null(api_mp_json("\xa2\xc0\x80", 3, &len));
	assert_null(api_mp_json("\xa3\xed\xa0\x80", 4, &len));
	assert_null(api_mp_json("\xa4\xf4\x90\x80\x80", 5, &len));
	assert_null(api_mp_json("\xa2\xe2\x82", 3, &len));
	assert_null(api_mp_json("\xa1\xff", 2, &len));
	assert_null(api_mp_json("\x81\x01\x02", 3, &len));
	assert_null(api_mp_json("\xd4\x01\x02", 3, &len));
	assert_null(api_mp_json("\xc0\xc0", 2, &len));
	assert_null(api_mp_json("\x92\x01", 2, &len));
	assert_null(api_mp_json(NULL, 0, &len));
	/* each of those api_mp_decode refuses too, or holds a real */
	assert_null(api_mp_decode("\xa3\xed\xa0\x80", 4));
	assert_null(api_mp_decode("\xa4\xf4\x90\x80\x80", 5));
	assert_null(api_mp_decode("\xa2\xc0\x80", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_ok),
		cmocka_unit_test(test_json_errors),
		cmocka_unit_test(test_json_depth),
		cmocka_unit_test(test_yaml_typing),
		cmocka_unit_test(test_yaml_structure),
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_yaml_bounds),
		cmocka_unit_test(test_proto_kubectl),
		cmocka_unit_test(test_proto_unsupported),
		cmocka_unit_test(test_proto_truncated_and_flipped),
		cmocka_unit_test(test_proto_metadata),
		cmocka_unit_test(test_proto_podspec),
		cmocka_unit_test(test_proto_wire_details),
		cmocka_unit_test(test_proto_errors),
		cmocka_unit_test(test_mp_roundtrip),
		cmocka_unit_test(test_mp_deep),
		cmocka_unit_test(test_mp_with_rv),
		cmocka_unit_test(test_mp_bad_input),
		cmocka_unit_test(test_json_text),
		cmocka_unit_test(test_mp_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

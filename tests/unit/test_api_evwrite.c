/* tests/unit/test_api_evwrite.c — a kubelet's Event created on its bytes
 * (plugins/apiserver/evwrite.c) against the JSON path it stands in for.
 *
 * For each event, the bytes api_event_create_mp makes, given the uid and
 * creationTimestamp the server stamped, are the bytes the JSON path
 * stored for the same event POSTed over HTTP, byte for byte; and a
 * create over the `api` service (the fast path, as a kubelet's) stores
 * what api_event_create_mp makes of its body. The shapes it leaves to
 * the JSON path get that path's answers over the bus, as over HTTP: the
 * same object stored, or the same error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "api.h"
#include "auth.h"
#include "evwrite.h"
#include "harness.h"
#include <kubus/client.h>

#include "api_bind_util.h"
#include "api_http_util.h"

static struct {
	struct kbt_host *h;
	kb_ctx *c;
	CURL *curl;
	int port;
	char token[128];
} fx;

/* A kubelet's Started event for pod p, named NAME, as JSON text with
 * `extra` (", \"k\": v…" or "") added at the top level. */
static char *event_json(const char *name, const char *extra)
{
	char *s = NULL;
	if (asprintf(&s,
		"{\"apiVersion\": \"v1\", \"kind\": \"Event\", \"metadata\": {\"name\": \"%s\", "
		"\"namespace\": \"default\"}, \"involvedObject\": {\"kind\": \"Pod\", "
		"\"apiVersion\": \"v1\", \"namespace\": \"default\", \"name\": \"p\", \"uid\": "
		"\"0b6c1b1e-4b8e-4c39-9d3a-1a2b3c4d5e6f\", \"fieldPath\": \"spec.containers{c}\"}, "
		"\"reason\": \"Started\", \"message\": \"Started container c\", \"source\": "
		"{\"component\": \"kubelet\", \"host\": \"node-a\"}, \"firstTimestamp\": "
		"\"2026-11-29T04:56:44Z\", \"lastTimestamp\": \"2026-11-29T04:56:44Z\", \"count\": "
		"1, \"type\": \"Normal\", \"reportingComponent\": \"kubelet\", "
		"\"reportingInstance\": \"node-a\"%s}",
		name, extra) < 0)
		fail_msg("out of memory");
	return s;
}

static char *mp_of(const json_t *o, size_t *len)
{
	char *mp = NULL;
	assert_int_equal(api_mp_encode(o, &mp, len), 0);
	return mp;
}

/* POST the event (JSON text) over HTTP: the code, the answer in *out. */
static long http_create(const char *body, json_t **out)
{
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/namespaces/default/events",
	    fx.port);
	return http_json(fx.curl, "POST", url, fx.token, "application/json", body, out);
}

/* The event's bytes as the store keeps them (no resourceVersion). */
static char *stored(const char *name, size_t *len)
{
	const struct api_resource *r = api_resource_find("", "v1", "events");
	char *key = api_key(r, "default", name);
	kb_msg *rep = NULL;
	expect_ok(kb_call(fx.c, KB_STORE_SERVICE, "get", kb_mp_body("{s:s}", "key", key), 10000,
		      &rep),
	    rep, "store get");
	free(key);
	const msgpack_object *v = kb_mp_get(kb_msg_body(rep), "kv.value");
	assert_non_null(v);
	assert_true(v->type == MSGPACK_OBJECT_BIN || v->type == MSGPACK_OBJECT_STR);
	*len = v->via.bin.size;
	char *out = malloc(*len);
	memcpy(out, v->via.bin.ptr, *len);
	kb_msg_free(rep);
	return out;
}

/* The stored event's metadata.uid and creationTimestamp. */
static void stamps_of(const char *data, size_t len, char uid[64], char ts[64])
{
	json_t *o = api_mp_decode(data, len);
	assert_non_null(o);
	snprintf(uid, 64, "%s", api_get_str(o, "metadata.uid") ?: "");
	snprintf(ts, 64, "%s", api_get_str(o, "metadata.creationTimestamp") ?: "");
	assert_true(uid[0] && ts[0]);
	json_decref(o);
}

static void expect_bytes(const char *got, size_t glen, const char *want, size_t wlen,
    const char *what)
{
	if (glen == wlen && !memcmp(got, want, glen))
		return;
	json_t *g = api_mp_decode(got, glen), *w = api_mp_decode(want, wlen);
	char *gs = g ? json_dumps(g, JSON_COMPACT) : NULL, *ws = w ? json_dumps(w, JSON_COMPACT) : NULL;
	fail_msg("%s:\n got  %s\n want %s", what, gs ? gs : "?", ws ? ws : "?");
}

/* What api_event_create_mp makes of mp (len), which must be made, with
 * the stamps of the stored `data`: the stored bytes. */
static void expect_fast(const char *mp, size_t len, const char *name, const char *data,
    size_t dlen, const char *what)
{
	char uid[64], ts[64], got_name[256] = "", *out = NULL;
	size_t outlen = 0;
	stamps_of(data, dlen, uid, ts);
	/* an exact-size copy, so ASan sees a read past the end */
	char *exact = malloc(len);
	memcpy(exact, mp, len);
	enum api_pstat r = api_event_create_mp(exact, len, "default", uid, ts, &out, &outlen,
	    got_name);
	free(exact);
	if (r != API_PSTAT_OK)
		fail_msg("%s: the fast path left it to JSON (%d)", what, (int)r);
	assert_string_equal(got_name, name);
	expect_bytes(out, outlen, data, dlen, what);
	free(out);
}

/* The event (extra fields as event_json takes them) created over HTTP
 * (JSON path) and over the bus (fast path): both stored as
 * api_event_create_mp makes them. */
static void same_both_ways(const char *name, const char *extra)
{
	char *text = event_json(name, extra);
	json_t *ans = NULL;
	long code = http_create(text, &ans);
	if (code != 201)
		fail_msg("%s: HTTP create: %ld %s", name, code,
		    ans ? json_dumps(ans, JSON_COMPACT) : "");
	json_decref(ans);
	json_t *obj = parse(text);
	size_t len, dlen;
	char *mp = mp_of(obj, &len);
	char *data = stored(name, &dlen);
	expect_fast(mp, len, name, data, dlen, name);
	free(data);

	/* the same event under another name, over the bus */
	char bname[256];
	snprintf(bname, sizeof bname, "%s.bus", name);
	json_object_set_new(json_object_get(obj, "metadata"), "name", json_string(bname));
	free(mp);
	mp = mp_of(obj, &len);
	kb_msg *rep = NULL;
	expect_ok(kb_api_create(fx.c, &KB_GVR_EVENTS, "default", kb_body_new(mp, len), &rep), rep,
	    "bus create");
	/* the answer is the stored event, with its resourceVersion */
	const char *uid = NULL;
	size_t ul = 0;
	assert_true(kb_mp_str(kb_msg_body(rep), "metadata.uid", &uid, &ul) && ul > 0);
	assert_non_null(kb_mp_get(kb_msg_body(rep), "metadata.resourceVersion"));
	kb_msg_free(rep);
	data = stored(bname, &dlen);
	expect_fast(mp, len, bname, data, dlen, bname);
	free(data);
	free(mp);
	json_decref(obj);
	free(text);
}

static void test_same_bytes(void **state)
{
	(void)state;
	same_both_ways("p.1", "");
	/* texts JSON escapes, counts msgpack writes in other widths */
	same_both_ways("p.2", ", \"count\": 200");
	same_both_ways("p.3", ", \"count\": 70000");
	same_both_ways("p.4", ", \"count\": 2147483647");
	same_both_ways("p.5", ", \"count\": 0");
	/* a message JSON escapes and msgpack writes as a str8 and a str16,
	 * a Warning, optional fields left out or added */
	char *t = event_json("p.6", "");
	json_t *o = parse(t);
	free(t);
	json_object_set_new(o, "message",
	    json_string("Back-off \"pulling\" image {x} \\ [y] a long message that is longer "
			"than thirty-one bytes, and longer than 255 bytes too: "
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	json_object_set_new(o, "type", json_string("Warning"));
	json_object_del(o, "source");
	json_object_del(o, "count");
	json_object_del(json_object_get(o, "involvedObject"), "fieldPath");
	json_object_set_new(json_object_get(o, "involvedObject"), "resourceVersion",
	    json_string("12"));
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	json_t *ans = NULL;
	assert_int_equal(http_create(text, &ans), 201);
	json_decref(ans);
	o = parse(text);
	size_t len, dlen;
	char *mp = mp_of(o, &len);
	char *data = stored("p.6", &dlen);
	expect_fast(mp, len, "p.6", data, dlen, "p.6");
	free(data);
	free(mp);
	json_decref(o);
	free(text);
}

/* mp (len) is refused by the fast path. */
static void expect_json(const char *mp, size_t len, const char *what)
{
	char name[256], *out = NULL;
	size_t outlen = 0;
	char *exact = malloc(len ? len : 1);
	memcpy(exact, mp, len);
	enum api_pstat r = api_event_create_mp(exact, len, "default", "u", "2026-11-29T04:56:44Z",
	    &out, &outlen, name);
	free(exact);
	if (r != API_PSTAT_JSON)
		fail_msg("%s: the fast path took it (%d)", what, (int)r);
	assert_null(out);
}

/* The event (with `extra` as event_json takes it, named name), and one
 * field of it (a path; NULL: none) set to v (stolen): refused. */
static void refused(const char *name, const char *extra, const char *path, json_t *v)
{
	char *t = event_json(name, extra);
	json_t *o = parse(t);
	if (path)
		api_set(o, path, v);
	size_t len;
	char *mp = mp_of(o, &len);
	expect_json(mp, len, path ? path : extra);
	free(mp);
	json_decref(o);
	free(t);
}

static void refused_text(const char *name, const char *extra)
{
	refused(name, extra, NULL, NULL);
}

static void refused_with(const char *path, json_t *v)
{
	refused("p.x", "", path, v);
}

/* A small event packed by hand, one of its heads longer than msgpack-c
 * writes it when `variant` says so (0: none): the JSON path would write
 * it shorter, so the fast path must leave it. */
static void pack_small(msgpack_sbuffer *sb, int variant)
{
	static const char str8_kind[] = { (char)0xd9, 5, 'E', 'v', 'e', 'n', 't' };
	static const char map16_md[] = { (char)0xde, 0, 2 };
	static const char uint16_count[] = { (char)0xcd, 0, 1 };
	msgpack_packer pk;
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	kb_mp_pack(&pk, "s:s, s:", "apiVersion", "v1", "kind");
	if (variant == 1)
		msgpack_sbuffer_write(sb, str8_kind, sizeof str8_kind);
	else
		kb_mp_pack_cstr(&pk, "Event");
	kb_mp_pack_cstr(&pk, "metadata");
	if (variant == 2)
		msgpack_sbuffer_write(sb, map16_md, sizeof map16_md);
	else
		msgpack_pack_map(&pk, 2);
	kb_mp_pack(&pk, "s:s, s:s, s:{s:s}, s:", "name", "small.1", "namespace", "default",
	    "involvedObject", "namespace", "default", "count");
	if (variant == 3)
		msgpack_sbuffer_write(sb, uint16_count, sizeof uint16_count);
	else
		msgpack_pack_int(&pk, 1);
}

static void test_left_to_json(void **state)
{
	(void)state;
	refused_text("p.x", ", \"eventTime\": \"2026-11-29T04:56:44.000000Z\"");
	refused_text("p.x", ", \"series\": {\"count\": 2}");
	refused_text("p.x", ", \"related\": {\"kind\": \"Pod\"}");
	refused_text("p.x", ", \"action\": \"Start\"");
	refused_text("p.x", ", \"foo\": 1");
	refused_text("Bad_Name", "");
	refused_with("message", json_string("caf\xc3\xa9"));
	refused_with("message", json_string("two\nlines"));
	/* a byte outside 0x20-0x7e anywhere in a text: in an 8-byte word of
	 * the check and in its tail */
	static const char odd[] = { 0x01, 0x1f, 0x7f, (char)0x80, (char)0xff };
	for (size_t at = 0; at < 21; at++) {
		for (size_t k = 0; k < sizeof odd; k++) {
			char m[22];
			memset(m, 'a' + (char)(at % 26), 21);
			m[21] = '\0';
			m[at] = odd[k];
			refused_with("message", json_stringn_nocheck(m, 21));
		}
	}
	refused_with("metadata.labels", json_pack("{s:s}", "a", "b"));
	refused_with("metadata.generateName", json_string("p."));
	refused_with("metadata.namespace", json_string("other"));
	refused_with("metadata.name", json_string(""));
	refused_with("involvedObject.namespace", json_string("other"));
	refused_with("involvedObject.extra", json_string("x"));
	refused_with("source.foo", json_string("x"));
	refused_with("firstTimestamp", json_string(""));
	refused_with("lastTimestamp", json_string("2026-11-29T04:56:44.5Z"));
	refused_with("lastTimestamp", json_string("2026-02-30T04:56:44Z"));
	refused_with("count", json_integer(-1));
	refused_with("count", json_integer(2147483648ll));
	refused_with("count", json_real(1.0));
	refused_with("reason", json_integer(3));
	refused_with("kind", json_string("Pod"));
	refused_with("apiVersion", json_string("events.k8s.io/v1"));
	/* involvedObject.namespace missing: the legacy rule decides */
	char *t = event_json("p.x", "");
	json_t *o = parse(t);
	json_object_del(json_object_get(o, "involvedObject"), "namespace");
	size_t len;
	char *mp = mp_of(o, &len);
	expect_json(mp, len, "no involvedObject.namespace");
	/* bytes that are not one whole map */
	expect_json(mp, len - 1, "truncated");
	expect_json(mp, 0, "empty");
	free(mp);
	json_decref(o);
	free(t);
	/* a bin for a string, a key given twice: packed by hand */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	kb_mp_pack(&pk, "s:s, s:s", "apiVersion", "v1", "kind", "Event");
	kb_mp_pack_cstr(&pk, "reason");
	msgpack_pack_bin(&pk, 3);
	msgpack_pack_bin_body(&pk, "abc", 3);
	expect_json(sb.data, sb.size, "bin");
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 3);
	kb_mp_pack(&pk, "s:s, s:s, s:s", "apiVersion", "v1", "kind", "Event", "kind", "Event");
	expect_json(sb.data, sb.size, "twice");
	/* heads longer than needed: taken only as msgpack-c writes them */
	pack_small(&sb, 0);
	char uid[] = "u", ts[] = "2026-11-29T04:56:44Z", name[256], *out = NULL;
	size_t outlen;
	assert_int_equal(api_event_create_mp(sb.data, sb.size, "default", uid, ts, &out, &outlen,
			     name),
	    API_PSTAT_OK);
	assert_string_equal(name, "small.1");
	free(out);
	for (int v = 1; v <= 3; v++) {
		pack_small(&sb, v);
		expect_json(sb.data, sb.size, "a long head");
	}
	msgpack_sbuffer_destroy(&sb);
}

/* A create over the bus and over HTTP of the JSON text: the same code,
 * and for an error the same message. */
static void same_answer(const char *name, const char *text, long want)
{
	json_t *ans = NULL;
	long code = http_create(text, &ans);
	if (code != want)
		fail_msg("%s: HTTP %ld, want %ld: %s", name, code, want,
		    ans ? json_dumps(ans, JSON_COMPACT) : "");
	json_t *o = parse(text);
	char bname[300];
	snprintf(bname, sizeof bname, "%s.bus", name);
	if (json_is_string(api_get(o, "metadata.name")) && want == 201)
		api_set(o, "metadata.name", json_string(bname));
	size_t len;
	char *mp = mp_of(o, &len);
	kb_msg *rep = NULL;
	int rc = kb_api_create(fx.c, &KB_GVR_EVENTS, "default", kb_body_new(mp, len), &rep);
	if (want == 201) {
		expect_ok(rc, rep, name);
		/* stored as over HTTP (the stamps aside) */
		size_t hl, bl;
		char *h = stored(name, &hl), *b = stored(bname, &bl);
		json_t *hj = api_mp_decode(h, hl), *bj = api_mp_decode(b, bl);
		json_t *hm = json_object_get(hj, "metadata"), *bm = json_object_get(bj, "metadata");
		json_object_del(hm, "uid");
		json_object_del(bm, "uid");
		json_object_del(hm, "creationTimestamp");
		json_object_del(bm, "creationTimestamp");
		json_object_set_new(bm, "name", json_string(name));
		char *hs = json_dumps(hj, JSON_COMPACT | JSON_SORT_KEYS),
		     *bs = json_dumps(bj, JSON_COMPACT | JSON_SORT_KEYS);
		assert_string_equal(bs, hs);
		free(hs);
		free(bs);
		json_decref(hj);
		json_decref(bj);
		free(h);
		free(b);
	} else {
		assert_int_not_equal(rc, 0);
		const char *m = "";
		kb_msg_err(rep, &m);
		const char *hm = api_get_str(ans, "message");
		assert_non_null(hm);
		if (strcmp(m, hm))
			fail_msg("%s: bus said \"%s\", HTTP \"%s\"", name, m, hm);
	}
	kb_msg_free(rep);
	free(mp);
	json_decref(o);
	json_decref(ans);
}

static void test_json_path_answers(void **state)
{
	(void)state;
	char *t;
	/* created: an unknown field dropped, an eventTime event */
	t = event_json("q.1", ", \"foo\": 1");
	same_answer("q.1", t, 201);
	free(t);
	t = event_json("q.2", ", \"eventTime\": \"2026-11-29T04:56:44.123456Z\", \"action\": "
			      "\"Start\"");
	same_answer("q.2", t, 201);
	free(t);
	/* refused: a name, a namespace, a type */
	t = event_json("Q_3", "");
	same_answer("Q_3", t, 422);
	free(t);
	json_t *o = parse((t = event_json("q.4", "")));
	free(t);
	api_set(o, "involvedObject.namespace", json_string("kube-system"));
	t = json_dumps(o, JSON_COMPACT);
	same_answer("q.4", t, 422);
	free(t);
	api_set(o, "involvedObject.namespace", json_string("default"));
	api_set(o, "count", json_string("one"));
	t = json_dumps(o, JSON_COMPACT);
	same_answer("q.5", t, 400);
	free(t);
	json_decref(o);
	/* the fast path's own: a name taken, a namespace that is not there */
	t = event_json("q.6", "");
	o = parse(t);
	free(t);
	size_t len;
	char *mp = mp_of(o, &len);
	kb_msg *rep = NULL;
	expect_ok(kb_api_create(fx.c, &KB_GVR_EVENTS, "default", kb_body_new(mp, len), &rep), rep,
	    "first");
	kb_msg_free(rep);
	rep = NULL;
	assert_int_equal(kb_api_create(fx.c, &KB_GVR_EVENTS, "default", kb_body_new(mp, len), &rep),
	    KB_EEXIST);
	kb_msg_free(rep);
	free(mp);
	rep = NULL;
	api_set(o, "metadata.namespace", json_string("nowhere"));
	api_set(o, "involvedObject.namespace", json_string("nowhere"));
	mp = mp_of(o, &len);
	assert_int_equal(kb_api_create(fx.c, &KB_GVR_EVENTS, "nowhere", kb_body_new(mp, len), &rep),
	    KB_ENOTFOUND);
	const char *m = "";
	kb_msg_err(rep, &m);
	assert_non_null(strstr(m, "namespaces \"nowhere\" not found"));
	kb_msg_free(rep);
	free(mp);
	json_decref(o);
}

int main(void)
{
	if ((fx.h = http_host(&fx.port, fx.token)) == NULL)
		return 1;
	if ((fx.c = kbt_client(fx.h, "tester", "plugin:tester", groups, 3)) == NULL) {
		fprintf(stderr, "set-up: no client\n");
		return 1;
	}
	fx.curl = curl_easy_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bytes),
		cmocka_unit_test(test_left_to_json),
		cmocka_unit_test(test_json_path_answers),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_easy_cleanup(fx.curl);
	kbt_host_stop(fx.h);
	return rc;
}

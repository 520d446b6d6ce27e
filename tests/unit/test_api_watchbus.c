/* tests/unit/test_api_watchbus.c — the watch cache's events to bus
 * watchers (the `api` service's watch) are byte for byte what the cache
 * sent when it kept a json_t per event: the test replays the store's own
 * watch through that old model (decode each value, set its
 * resourceVersion, a delete deep-copies the last state and sets the
 * delete's version, selectors match on the trees, the bytes are the
 * stored ones spliced or the tree encoded) and compares every published
 * {watch_id, type, object} with what the model builds, for initial
 * events, adds, modifies entering, staying in and leaving a selection,
 * deletes, namespaced and all-namespace watches, label and field
 * selectors. The msgpack selectors (select.c) are checked against the
 * json_t ones on the same objects at every event, too. Pod watchers
 * indexed by spec.nodeName see what their selectors say (test_node_index).
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "server.h"
#include <kubus/store.h>

static const char *const groups[] = { "kubus:plugins", "kubus:kind:frontend",
	"kubus:kind:store" };

/* One bus watch under test and the filters the old model applies. */
struct bw {
	const char *ns, *labels, *fields;
	int64_t id;
	char topic[64];
	struct api_selector *ls, *fs;
	/* what came, raw bodies */
	kb_body **got;
	size_t ngot;
};

#define NW 5
static struct bw W[NW] = {
	{ .ns = "default" },
	{ .ns = "default", .labels = "app=web" },
	{ .ns = NULL, .fields = "metadata.name=cm-1" },
	{ .ns = NULL, .labels = "tier in (a,b),!gone" },
	{ .ns = "other", .labels = "app!=web", .fields = "metadata.namespace=other" },
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static kb_body **store_evs; /* the store watch's publications */
static size_t nstore;

static void on_bus(void *arg, const kb_msg *m)
{
	struct bw *w = arg;
	pthread_mutex_lock(&mu);
	kb_body **g = realloc(w->got, (w->ngot + 1) * sizeof(*g));
	assert_non_null(g);
	w->got = g;
	w->got[w->ngot++] = kb_msg_body_ref(m);
	pthread_mutex_unlock(&mu);
}

static void on_store(void *arg, const kb_msg *m)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	kb_body **g = realloc(store_evs, (nstore + 1) * sizeof(*g));
	assert_non_null(g);
	store_evs = g;
	store_evs[nstore++] = kb_msg_body_ref(m);
	pthread_mutex_unlock(&mu);
}

static void api_call(kb_ctx *c, const char *op, const char *ns, const char *name,
    kb_body *body)
{
	kb_msg *rep = NULL;
	(void)ns;
	(void)name;
	int rc = kb_call(c, "api", op, body, 10000, &rep);
	if (rc)
		fail_msg("api %s %s/%s: %s", op, ns, name, kb_strerror(rc));
	kb_msg_free(rep);
}

static void create_cm(kb_ctx *c, const char *ns, const char *name, const char *labels_json)
{
	char text[512];
	snprintf(text, sizeof(text),
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
	    "\"namespace\":\"%s\",\"labels\":%s,\"annotations\":{\"n\":\"1\"}},"
	    "\"data\":{\"k\":\"v\",\"x\":\"%s\"}}",
	    name, ns, labels_json, name);
	json_t *o = json_loads(text, 0, NULL);
	assert_non_null(o);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	kb_mp_pack(&pk, "s:s", "group", "");
	kb_mp_pack(&pk, "s:s", "version", "v1");
	kb_mp_pack(&pk, "s:s", "resource", "configmaps");
	kb_mp_pack(&pk, "s:s", "namespace", ns);
	kb_mp_pack_cstr(&pk, "object");
	assert_int_equal(api_mp_from_json(&pk, o), 0);
	json_decref(o);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	api_call(c, "create", ns, name, b);
}

static void patch_cm(kb_ctx *c, const char *ns, const char *name, const char *patch_json)
{
	json_t *o = json_loads(patch_json, 0, NULL);
	assert_non_null(o);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 7);
	kb_mp_pack(&pk, "s:s", "group", "");
	kb_mp_pack(&pk, "s:s", "version", "v1");
	kb_mp_pack(&pk, "s:s", "resource", "configmaps");
	kb_mp_pack(&pk, "s:s", "namespace", ns);
	kb_mp_pack(&pk, "s:s", "name", name);
	kb_mp_pack(&pk, "s:s", "patchType", "merge");
	kb_mp_pack_cstr(&pk, "patch");
	assert_int_equal(api_mp_from_json(&pk, o), 0);
	json_decref(o);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	api_call(c, "patch", ns, name, b);
}

static void delete_cm(kb_ctx *c, const char *ns, const char *name)
{
	api_call(c, "delete", ns, name,
	    kb_mp_body("{s:s, s:s, s:s, s:s, s:s}", "group", "", "version", "v1", "resource",
	        "configmaps", "namespace", ns, "name", name));
}

/* --- the old model ------------------------------------------------------------- */

static bool old_matches(const struct bw *w, const json_t *obj)
{
	if (obj == NULL)
		return false;
	if (w->ns && strcmp(w->ns, api_get_str(obj, "metadata.namespace") ?: "") != 0)
		return false;
	return api_selector_match(w->ls, obj) && api_selector_match(w->fs, obj);
}

static char old_seen(const struct bw *w, char type, const json_t *obj, const json_t *old)
{
	bool now = old_matches(w, obj);
	bool before = old && old_matches(w, old);
	switch (type) {
	case 'A': return now ? 'A' : 0;
	case 'D': return now ? 'D' : 0;
	default:
		if (now && before)
			return 'M';
		if (now)
			return 'A';
		return before ? 'D' : 0;
	}
}

static const char *type_name(char t)
{
	return t == 'A' ? "ADDED" : t == 'M' ? "MODIFIED" : "DELETED";
}

/* busapi's {watch_id, type, object} around the object's bytes. */
static kb_body *event_body(int64_t id, const char *type, const char *mp, size_t len)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	kb_mp_pack(&pk, "s:I", "watch_id", id);
	kb_mp_pack(&pk, "s:s", "type", type);
	kb_mp_pack_cstr(&pk, "object");
	msgpack_sbuffer_write(&sb, mp, len);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

struct expect {
	kb_body **b;
	size_t n;
};

static void expect_add(struct expect *x, kb_body *b)
{
	x->b = realloc(x->b, (x->n + 1) * sizeof(*x->b));
	assert_non_null(x->b);
	x->b[x->n++] = b;
}

/* The msgpack selectors agree with the json_t ones on this object. */
static void check_mp_select(const json_t *obj)
{
	char *mp;
	size_t len;
	assert_int_equal(api_mp_encode(obj, &mp, &len), 0);
	struct api_mp_memo memo = { 0 };
	for (size_t i = 0; i < NW; i++) {
		assert_int_equal(api_selector_match(W[i].ls, obj), api_selector_match_mp(W[i].ls, mp, len, NULL));
		assert_int_equal(api_selector_match(W[i].fs, obj), api_selector_match_mp(W[i].fs, mp, len, NULL));
		assert_int_equal(api_selector_match(W[i].ls, obj), api_selector_match_mp(W[i].ls, mp, len, &memo));
		assert_int_equal(api_selector_match(W[i].fs, obj), api_selector_match_mp(W[i].fs, mp, len, &memo));
	}
	free(mp);
}

static void model_event(json_t *objs, const msgpack_object *ev, struct expect *x)
{
	const msgpack_object *kv = kb_mp_key(ev, "kv");
	char *key = kb_mp_strdup(kv, "key");
	assert_non_null(key);
	int64_t rev = 0;
	kb_mp_int(kv, "mod_rev", &rev);
	json_t *old = json_incref(json_object_get(objs, key));
	json_t *obj;
	char type;
	char *mp = NULL;
	size_t len = 0;
	if (kb_mp_streq(ev, "type", "delete")) {
		if (old == NULL) {
			free(key);
			return;
		}
		obj = json_deep_copy(old);
		char rv[32];
		snprintf(rv, sizeof(rv), "%" PRId64, rev);
		api_set(obj, "metadata.resourceVersion", json_string(rv));
		json_object_del(objs, key);
		type = 'D';
		assert_int_equal(api_mp_encode(obj, &mp, &len), 0);
	} else {
		obj = api_store_kv_object(kv, NULL);
		assert_non_null(obj);
		json_object_set(objs, key, obj);
		type = old ? 'M' : 'A';
		const msgpack_object *v = kb_mp_key(kv, "value");
		if (api_mp_with_rv(v->via.bin.ptr, v->via.bin.size, rev, &mp, &len) != 0)
			assert_int_equal(api_mp_encode(obj, &mp, &len), 0);
	}
	check_mp_select(obj);
	for (size_t i = 0; i < NW; i++) {
		char t = old_seen(&W[i], type, obj, old);
		if (t)
			expect_add(&x[i], event_body(W[i].id, type_name(t), mp, len));
	}
	free(mp);
	json_decref(obj);
	json_decref(old);
	free(key);
}

/* A host with store-lmdb and the apiserver (plain HTTP), and a client of
 * its bus that may call the store and the api service. */
static struct kbt_host *api_host(kb_ctx **c)
{
	char err[1024] = "";
	struct kbt_host *h = kbt_api_host_start("listen: \"127.0.0.1:0\", plain_http: true", err,
	    sizeof(err));
	if (h == NULL)
		fail_msg("host: %s", err);
	*c = kbt_client(h, "tester", "plugin:tester", groups, 3);
	assert_non_null(*c);
	return h;
}

static size_t total_got(void)
{
	pthread_mutex_lock(&mu);
	size_t n = 0;
	for (size_t i = 0; i < NW; i++)
		n += W[i].ngot;
	pthread_mutex_unlock(&mu);
	return n;
}

static void test_bus_events_as_before(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = api_host(&c);
	struct api_error e = { 0 };
	for (size_t i = 0; i < NW; i++) {
		W[i].ls = api_label_selector(W[i].labels, &e);
		W[i].fs = api_field_selector(api_resource_find("", "v1", "configmaps"), W[i].fields, &e);
		assert_non_null(W[i].ls);
		assert_non_null(W[i].fs);
	}
	/* A namespace for the second set; objects before the watches start. */
	api_call(c, "create", "", "other",
	    kb_mp_body("{s:s, s:s, s:s, s:{s:s, s:s, s:{s:s}}}", "group", "", "version", "v1",
	        "resource", "namespaces", "object", "apiVersion", "v1", "kind", "Namespace",
	        "metadata", "name", "other"));
	create_cm(c, "default", "cm-0a", "{\"app\":\"web\",\"tier\":\"a\"}");
	create_cm(c, "default", "cm-0b", "{\"app\":\"db\"}");
	create_cm(c, "other", "cm-0c", "{\"app\":\"db\",\"tier\":\"b\"}");

	/* The old model's start: the store's state now, its watch after. */
	char *prefix = api_key(api_resource_find("", "v1", "configmaps"), NULL, NULL);
	kb_msg *rep = NULL;
	assert_int_equal(kb_call(c, KB_STORE_SERVICE, "range", kb_mp_body("{s:s}", "prefix", prefix),
	                     10000, &rep), 0);
	int64_t at = 0;
	kb_mp_int(kb_msg_body(rep), "rev", &at);
	json_t *objs = json_object();
	const msgpack_object *kvs = kb_mp_key(kb_msg_body(rep), "kvs");
	assert_non_null(kvs);
	struct expect x[NW] = { 0 };
	assert_int_equal(kb_subscribe(c, "store/watch/tester-model", on_store, NULL), 0);
	int64_t sid = 0;
	kb_msg *wr = NULL;
	assert_int_equal(kb_call(c, KB_STORE_SERVICE, "watch",
	                     kb_mp_body("{s:s, s:I, s:b, s:s}", "prefix", prefix, "rev", at + 1, "prev", 1,
	                         "topic", "store/watch/tester-model"),
	                     10000, &wr), 0);
	kb_msg_free(wr);
	(void)sid;
	/* The bus watches, from now (initial events: the current objects). */
	for (size_t i = 0; i < NW; i++) {
		snprintf(W[i].topic, sizeof(W[i].topic), "tester/watch/%zu", i);
		assert_int_equal(kb_subscribe(c, W[i].topic, on_bus, &W[i]), 0);
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 4 + !!W[i].ns + !!W[i].labels + !!W[i].fields);
		kb_mp_pack(&pk, "s:s", "group", "");
		kb_mp_pack(&pk, "s:s", "version", "v1");
		kb_mp_pack(&pk, "s:s", "resource", "configmaps");
		kb_mp_pack(&pk, "s:s", "topic", W[i].topic);
		if (W[i].ns)
			kb_mp_pack(&pk, "s:s", "namespace", W[i].ns);
		if (W[i].labels)
			kb_mp_pack(&pk, "s:s", "labelSelector", W[i].labels);
		if (W[i].fields)
			kb_mp_pack(&pk, "s:s", "fieldSelector", W[i].fields);
		kb_body *b = kb_body_from_sbuf(&sb);
		msgpack_sbuffer_destroy(&sb);
		kb_msg *r = NULL;
		int rc = kb_call(c, "api", "watch", b, 10000, &r);
		if (rc)
			fail_msg("watch %zu: %s", i, kb_strerror(rc));
		assert_true(kb_mp_int(kb_msg_body(r), "watch_id", &W[i].id));
		kb_msg_free(r);
	}
	/* Initial events, as the old cache sent them: the tree encoded. */
	for (uint32_t i = 0; i < kvs->via.array.size; i++) {
		const msgpack_object *kv = &kvs->via.array.ptr[i];
		char *key = kb_mp_strdup(kv, "key");
		json_t *o = api_store_kv_object(kv, NULL);
		assert_non_null(o);
		json_object_set(objs, key, o);
		char *mp;
		size_t len;
		assert_int_equal(api_mp_encode(o, &mp, &len), 0);
		for (size_t j = 0; j < NW; j++)
			if (old_matches(&W[j], o))
				expect_add(&x[j], event_body(W[j].id, "ADDED", mp, len));
		free(mp);
		json_decref(o);
		free(key);
	}
	kb_msg_free(rep);

	/* Adds, modifies in, into, out of and outside the selections, deletes. */
	create_cm(c, "default", "cm-1", "{\"app\":\"web\",\"tier\":\"a\"}");
	create_cm(c, "default", "cm-2", "{\"app\":\"db\"}");
	create_cm(c, "other", "cm-3", "{\"tier\":\"c\"}");
	patch_cm(c, "default", "cm-2", "{\"metadata\":{\"labels\":{\"app\":\"web\"}}}");
	patch_cm(c, "default", "cm-1", "{\"metadata\":{\"labels\":{\"app\":\"db\"}}}");
	patch_cm(c, "default", "cm-1", "{\"data\":{\"k\":\"v2\"}}");
	patch_cm(c, "default", "cm-2", "{\"data\":{\"k\":\"v3\",\"n\":\"12\"}}");
	patch_cm(c, "other", "cm-3", "{\"metadata\":{\"labels\":{\"tier\":\"b\"}}}");
	patch_cm(c, "other", "cm-3", "{\"metadata\":{\"labels\":{\"gone\":\"yes\"}}}");
	patch_cm(c, "default", "cm-0a", "{\"metadata\":{\"labels\":{\"app\":null}}}");
	patch_cm(c, "other", "cm-0c", "{\"metadata\":{\"labels\":{\"app\":\"web\"}}}");
	delete_cm(c, "default", "cm-2");
	delete_cm(c, "other", "cm-3");
	delete_cm(c, "default", "cm-1");
	delete_cm(c, "other", "cm-0c");
	create_cm(c, "default", "cm-2", "{\"app\":\"web\"}");
	create_cm(c, "default", "cm-1", "{}");

	/* Every store event through the model; then wait for the bus. */
	int64_t until = time(NULL) + 20;
	size_t want = 0, seen_store = 0, nput = 0;
	while (time(NULL) < until) {
		pthread_mutex_lock(&mu);
		for (; seen_store < nstore; seen_store++) {
			const msgpack_object *b = kb_body_obj(store_evs[seen_store]);
			const msgpack_object *evs = kb_mp_key(b, "events");
			for (uint32_t i = 0; evs && evs->type == MSGPACK_OBJECT_ARRAY && i < evs->via.array.size; i++) {
				model_event(objs, &evs->via.array.ptr[i], x);
				nput++;
			}
		}
		pthread_mutex_unlock(&mu);
		want = 0;
		for (size_t i = 0; i < NW; i++)
			want += x[i].n;
		if (nput >= 17 && total_got() >= want)
			break;
		usleep(20000);
	}
	assert_int_equal(nput, 17);
	usleep(200000); /* nothing more should come */
	pthread_mutex_lock(&mu);
	size_t compared = 0;
	for (size_t i = 0; i < NW; i++) {
		if (W[i].ngot != x[i].n)
			fail_msg("watch %zu (%s %s %s): %zu events, the old cache sent %zu", i,
			    W[i].ns ? W[i].ns : "*", W[i].labels ? W[i].labels : "",
			    W[i].fields ? W[i].fields : "", W[i].ngot, x[i].n);
		for (size_t j = 0; j < x[i].n; j++) {
			size_t gl, wl;
			const void *g = kb_body_data(W[i].got[j], &gl);
			const void *w = kb_body_data(x[i].b[j], &wl);
			if (gl != wl || memcmp(g, w, gl))
				fail_msg("watch %zu event %zu: %zu bytes differ from the old cache's %zu", i, j,
				    gl, wl);
			compared++;
		}
	}
	pthread_mutex_unlock(&mu);
	/* each watch saw something of every kind the test means to cover */
	assert_true(compared >= 25);
	print_message("compared %zu bus events byte for byte\n", compared);

	kbt_host_stop(h);
	for (size_t i = 0; i < NW; i++) {
		for (size_t j = 0; j < W[i].ngot; j++)
			kb_body_unref(W[i].got[j]);
		for (size_t j = 0; j < x[i].n; j++)
			kb_body_unref(x[i].b[j]);
		free(W[i].got);
		free(x[i].b);
		api_selector_free(W[i].ls);
		api_selector_free(W[i].fs);
	}
	for (size_t i = 0; i < nstore; i++)
		kb_body_unref(store_evs[i]);
	free(store_evs);
	json_decref(objs);
	free(prefix);
	api_err_clear(&e);
}

/* The msgpack reads agree with the json_t ones on odd values. */
static void test_mp_reads(void **state)
{
	(void)state;
	const char *objs[] = {
		"{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\",\"labels\":{\"x\":\"10\",\"y\":\"\"}},"
		"\"spec\":{\"nodeName\":\"n1\",\"hostNetwork\":true,\"unschedulable\":false},"
		"\"status\":{\"phase\":\"Running\",\"replicas\":3}}",
		"{\"metadata\":{\"name\":\"b\",\"labels\":{\"x\":5,\"z\":null}},\"spec\":{\"nodeName\":7},"
		"\"status\":{\"replicas\":-4,\"phase\":1.5}}",
		"{\"metadata\":{\"name\":\"c\",\"labels\":[]},\"spec\":[],\"status\":\"x\"}",
		"{\"metadata\":null,\"status\":{\"replicas\":9223372036854775807}}",
	};
	const char *lsel[] = { "", "x", "!x", "x=10", "x!=10", "x in (10,5)", "x notin (10)",
		"x>9", "x<11", "y=", "y", "z", "!z", "x,y" };
	const char *fsel[][2] = { { "pods", "spec.nodeName=n1" }, { "pods", "spec.hostNetwork=true" },
		{ "pods", "spec.nodeName=7" }, { "pods", "status.phase!=Running" },
		{ "pods", "metadata.namespace=" }, { "pods", "status.phase=" },
		{ "nodes", "spec.unschedulable=false" }, { "replicasets", "status.replicas=3" },
		{ "replicasets", "status.replicas=-4" },
		{ "replicasets", "status.replicas=9223372036854775807" },
		{ "pods", "metadata.name=a,spec.nodeName!=x" } };
	struct api_error e = { 0 };
	for (size_t i = 0; i < sizeof(objs) / sizeof(*objs); i++) {
		json_t *o = json_loads(objs[i], 0, NULL);
		assert_non_null(o);
		char *mp;
		size_t len;
		assert_int_equal(api_mp_encode(o, &mp, &len), 0);
		/* one memo for every selector on this object, as the cache's */
		struct api_mp_memo memo = { 0 };
		for (size_t j = 0; j < sizeof(lsel) / sizeof(*lsel); j++) {
			struct api_selector *s = api_label_selector(lsel[j], &e);
			assert_non_null(s);
			if (api_selector_match(s, o) != api_selector_match_mp(s, mp, len, NULL))
				fail_msg("object %zu, labels %s: json %d, msgpack %d", i, lsel[j],
				    api_selector_match(s, o), api_selector_match_mp(s, mp, len, NULL));
			if (api_selector_match(s, o) != api_selector_match_mp(s, mp, len, &memo))
				fail_msg("object %zu, memo, selector %zu: json %d", i, j, api_selector_match(s, o));
			api_selector_free(s);
		}
		for (size_t j = 0; j < sizeof(fsel) / sizeof(*fsel); j++) {
			const struct api_resource *r = api_resource_find(
			    !strcmp(fsel[j][0], "replicasets") ? "apps" : "", "v1", fsel[j][0]);
			assert_non_null(r);
			struct api_selector *s = api_field_selector(r, fsel[j][1], &e);
			assert_non_null(s);
			if (api_selector_match(s, o) != api_selector_match_mp(s, mp, len, NULL))
				fail_msg("object %zu, fields %s: json %d, msgpack %d", i, fsel[j][1],
				    api_selector_match(s, o), api_selector_match_mp(s, mp, len, NULL));
			if (api_selector_match(s, o) != api_selector_match_mp(s, mp, len, &memo))
				fail_msg("object %zu, memo, selector %zu: json %d", i, j, api_selector_match(s, o));
			api_selector_free(s);
		}
		const char *paths[] = { "metadata.name", "metadata.namespace", "status.phase",
			"metadata.labels", "spec" };
		for (size_t j = 0; j < sizeof(paths) / sizeof(*paths); j++) {
			size_t n = 0;
			const char *v = api_mp_str(mp, len, paths[j], &n);
			const char *want = api_get_str(o, paths[j]);
			assert_int_equal(v != NULL, want != NULL);
			if (v)
				assert_true(n == strlen(want) && !memcmp(v, want, n));
			assert_int_equal(api_mp_has(mp, len, paths[j]), api_get(o, paths[j]) != NULL);
			assert_int_equal(api_mp_str_is(mp, len, paths[j], want ? want : "", &memo), true);
			assert_int_equal(api_mp_str_is(mp, len, paths[j], "zz", &memo), want && !strcmp(want, "zz"));
			assert_int_equal(api_mp_str_is(mp, len, paths[j], want ? want : "", NULL), true);
		}
		/* a delete's version, in the bytes as on the tree */
		char *mp2, *rv;
		size_t len2, rvlen;
		json_t *md = json_object_get(o, "metadata");
		if (json_is_object(md)) {
			json_object_set_new(md, "resourceVersion", json_string("77"));
			free(mp);
			assert_int_equal(api_mp_encode(o, &mp, &len), 0);
			assert_int_equal(api_mp_set_rv(mp, len, 123456789012LL, &mp2, &len2), 0);
			json_object_set_new(md, "resourceVersion", json_string("123456789012"));
			assert_int_equal(api_mp_encode(o, &rv, &rvlen), 0);
			assert_int_equal(len2, rvlen);
			assert_memory_equal(mp2, rv, rvlen);
			free(mp2);
			free(rv);
		} else {
			assert_int_not_equal(api_mp_set_rv(mp, len, 5, &mp2, &len2), 0);
		}
		free(mp);
		json_decref(o);
	}
	api_err_clear(&e);
}

/* --- watchers indexed by spec.nodeName -------------------------------------- */

/* Pod watches whose field selector says spec.nodeName=… are kept by that
 * value (cache.c) and only see events of pods on that node, before or
 * after the event: each watcher gets what its selector says, whether it
 * is indexed, shares its node with others, selects more than the node,
 * selects the unscheduled (spec.nodeName=) or is not indexed (!=). */
struct nw {
	const char *ns, *fields;
	int64_t id;
	char topic[64];
	char got[16][32]; /* "TYPE name" */
	size_t ngot;
};

#define NN 6
static struct nw N[NN] = {
	{ .fields = "spec.nodeName=n1" },
	{ .fields = "spec.nodeName=n1" },
	{ .ns = "default", .fields = "spec.nodeName=n2" },
	{ .fields = "spec.nodeName=" },
	{ .fields = "spec.nodeName!=n1" },
	{ .fields = "spec.nodeName=n1,status.phase!=Failed" },
};

static void on_node_bus(void *arg, const kb_msg *m)
{
	struct nw *w = arg;
	const msgpack_object *b = kb_msg_body(m);
	char *type = kb_mp_strdup(b, "type");
	char *name = kb_mp_strdup(kb_mp_key(b, "object"), "metadata.name");
	pthread_mutex_lock(&mu);
	if (w->ngot < 16)
		snprintf(w->got[w->ngot], sizeof(w->got[0]), "%s %s", type ? type : "?",
		    name ? name : "?");
	w->ngot++;
	pthread_mutex_unlock(&mu);
	free(type);
	free(name);
}

static void pod_call(kb_ctx *c, const char *op, const char *name, const char *sub,
    const char *field, const char *json)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4 + !!name + !!sub + (field ? 1 : 0) +
	        (op[0] == 'p' ? 1 : 0));
	kb_mp_pack(&pk, "s:s", "group", "");
	kb_mp_pack(&pk, "s:s", "version", "v1");
	kb_mp_pack(&pk, "s:s", "resource", "pods");
	kb_mp_pack(&pk, "s:s", "namespace", "default");
	if (name)
		kb_mp_pack(&pk, "s:s", "name", name);
	if (sub)
		kb_mp_pack(&pk, "s:s", "subresource", sub);
	if (op[0] == 'p')
		kb_mp_pack(&pk, "s:s", "patchType", "merge");
	if (field) {
		json_t *o = json_loads(json, 0, NULL);
		assert_non_null(o);
		kb_mp_pack_cstr(&pk, field);
		assert_int_equal(api_mp_from_json(&pk, o), 0);
		json_decref(o);
	}
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	api_call(c, op, "default", name ? name : "", b);
}

static void create_pod(kb_ctx *c, const char *name, const char *node)
{
	char text[512];
	snprintf(text, sizeof(text),
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"},"
	    "\"spec\":{%s%s%s\"containers\":[{\"name\":\"c\",\"image\":\"busybox:1\"}]}}",
	    name, node ? "\"nodeName\":\"" : "", node ? node : "", node ? "\"," : "");
	pod_call(c, "create", NULL, NULL, "object", text);
}

static size_t node_got(void)
{
	pthread_mutex_lock(&mu);
	size_t n = 0;
	for (size_t i = 0; i < NN; i++)
		n += N[i].ngot;
	pthread_mutex_unlock(&mu);
	return n;
}

static void test_node_index(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = api_host(&c);
	for (size_t i = 0; i < NN; i++) {
		snprintf(N[i].topic, sizeof(N[i].topic), "tester/nodewatch/%zu", i);
		assert_int_equal(kb_subscribe(c, N[i].topic, on_node_bus, &N[i]), 0);
		kb_msg *r = NULL;
		int rc = kb_call(c, "api", "watch",
		    N[i].ns ? kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s}", "group", "", "version",
		                  "v1", "resource", "pods", "topic", N[i].topic, "fieldSelector",
		                  N[i].fields, "namespace", N[i].ns)
		            : kb_mp_body("{s:s, s:s, s:s, s:s, s:s}", "group", "", "version", "v1",
		                  "resource", "pods", "topic", N[i].topic, "fieldSelector",
		                  N[i].fields),
		    10000, &r);
		if (rc)
			fail_msg("watch %zu: %s", i, kb_strerror(rc));
		assert_true(kb_mp_int(kb_msg_body(r), "watch_id", &N[i].id));
		kb_msg_free(r);
	}
	create_pod(c, "a", NULL);
	pod_call(c, "create", "a", "binding", "object",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Binding\",\"metadata\":{\"name\":\"a\"},"
	    "\"target\":{\"kind\":\"Node\",\"name\":\"n1\"}}");
	create_pod(c, "b", "n2");
	/* The first of n1's two watchers goes: the second still sees a. */
	kb_msg *r = NULL;
	assert_int_equal(kb_call(c, "api", "unwatch", kb_mp_body("{s:I}", "watch_id", N[0].id),
	                     10000, &r), 0);
	kb_msg_free(r);
	pod_call(c, "patch", "a", NULL, "patch", "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}");
	pod_call(c, "delete", "a", NULL, "options", "{\"gracePeriodSeconds\":0}");
	pod_call(c, "delete", "b", NULL, "options", "{\"gracePeriodSeconds\":0}");

	static const char *const want[NN][8] = {
		{ "ADDED a", "ERROR ?" },
		{ "ADDED a", "MODIFIED a", "DELETED a" },
		{ "ADDED b", "DELETED b" },
		{ "ADDED a", "DELETED a" },
		{ "ADDED a", "DELETED a", "ADDED b", "DELETED b" },
		{ "ADDED a", "MODIFIED a", "DELETED a" },
	};
	size_t nwant = 0;
	for (size_t i = 0; i < NN; i++)
		for (size_t j = 0; want[i][j]; j++)
			nwant++;
	for (int64_t until = time(NULL) + 20; node_got() < nwant && time(NULL) < until;)
		usleep(20000);
	usleep(200000); /* nothing more should come */
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < NN; i++) {
		size_t n = 0;
		while (want[i][n])
			n++;
		for (size_t j = 0; j < N[i].ngot && j < 16; j++)
			print_message("watch %zu (%s): %s\n", i, N[i].fields, N[i].got[j]);
		if (N[i].ngot != n)
			fail_msg("watch %zu (%s): %zu events, want %zu", i, N[i].fields, N[i].ngot, n);
		for (size_t j = 0; j < n; j++)
			assert_string_equal(N[i].got[j], want[i][j]);
	}
	pthread_mutex_unlock(&mu);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mp_reads),
		cmocka_unit_test(test_bus_events_as_before),
		cmocka_unit_test(test_node_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

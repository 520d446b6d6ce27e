/* tests/unit/test_ctrl_burst.c — controllers at scale: the SDK's batches
 * of concurrent API calls (kb_api_batch_*), a ReplicaSet whose pods are
 * created and deleted several at a time in bursts (never one too many,
 * whatever the concurrency), and the garbage collector removing a few
 * hundred dependents of one owner (its per-owner dependents set grows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl_util.h"

#define NCM 40

static const char controllers[] =
    "  - name: ctrl-replicaset\n"
    "    use: ctrl-replicaset\n"
    "    config: {resync: 5s, burst_replicas: 100,"
    " concurrent_calls: 16}\n"
    "  - name: ctrl-gc\n"
    "    use: ctrl-gc\n"
    "    config: {resync: 5s}\n";

static struct ct t;

static int setup(void **state)
{
	return ct_start(&t, controllers) ? 0 : -1;
}

static int teardown(void **state)
{
	ct_stop(&t);
	return 0;
}

struct tally {
	atomic_int ok, invalid, exists, notfound, other;
	atomic_int named; /* replies that carried the object */
};

static void done(void *arg, int rc, const kb_msg *rep)
{
	struct tally *t = arg;
	switch (rc) {
	case 0:
		atomic_fetch_add(&t->ok, 1);
		if (rep && kb_mp_get(kb_msg_body(rep), "metadata.name"))
			atomic_fetch_add(&t->named, 1);
		break;
	case KB_EINVAL:
		atomic_fetch_add(&t->invalid, 1);
		break;
	case KB_EEXIST:
		atomic_fetch_add(&t->exists, 1);
		break;
	case KB_ENOTFOUND:
		atomic_fetch_add(&t->notfound, 1);
		break;
	default:
		atomic_fetch_add(&t->other, 1);
	}
}

static kb_body *cm(const char *name)
{
	return kb_mp_body("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1",
	    "kind", "ConfigMap", "metadata", "name", name, "labels", "batch",
	    "yes");
}

/* Calls in flight together: each answered once, with the blocking call's
 * result (created, Invalid, AlreadyExists, NotFound). */
static void test_api_batch(void **state)
{
	struct tally ty = { 0 };
	struct kb_api_batch *b = kb_api_batch_new(t.c, 4);
	assert_non_null(b);
	char name[64];
	for (int i = 0; i < NCM; i++) {
		snprintf(name, sizeof(name), "batch-%d", i);
		assert_int_equal(kb_api_batch_create(b, &KB_GVR_CONFIGMAPS,
				     "default", cm(name), done, &ty),
		    0);
	}
	/* a name the API refuses, and one taken (perhaps still in flight:
	 * sent after the wait so the answer is certain) */
	assert_int_equal(kb_api_batch_create(b, &KB_GVR_CONFIGMAPS, "default",
			     cm("Not_A_Name"), done, &ty),
	    0);
	kb_api_batch_wait(b);
	assert_int_equal(kb_api_batch_create(b, &KB_GVR_CONFIGMAPS, "default",
			     cm("batch-7"), done, &ty),
	    0);
	kb_api_batch_wait(b);
	assert_int_equal(atomic_load(&ty.ok), NCM);
	assert_int_equal(atomic_load(&ty.named), NCM);
	assert_int_equal(atomic_load(&ty.invalid), 1);
	assert_int_equal(atomic_load(&ty.exists), 1);
	assert_int_equal(atomic_load(&ty.other), 0);
	assert_int_equal(ct_list(&t, &KB_GVR_CONFIGMAPS, "default", "batch=yes",
			     NULL, NULL),
	    NCM);

	/* patches and deletes, one of them of nothing */
	struct tally td = { 0 };
	for (int i = 0; i < NCM / 2; i++) {
		snprintf(name, sizeof(name), "batch-%d", i);
		assert_int_equal(kb_api_batch_delete(b, &KB_GVR_CONFIGMAPS,
				     "default", name, NULL, done, &td),
		    0);
	}
	assert_int_equal(kb_api_batch_delete(b, &KB_GVR_CONFIGMAPS, "default",
			     "batch-none", NULL, done, &td),
	    0);
	snprintf(name, sizeof(name), "batch-%d", NCM - 1);
	assert_int_equal(kb_api_batch_patch(b, &KB_GVR_CONFIGMAPS, "default",
			     name, NULL, "merge",
			     kb_mp_body("{s:{s:s}}", "data", "k", "v"), done,
			     &td),
	    0);
	kb_api_batch_free(b); /* waits for what is out */
	assert_int_equal(atomic_load(&td.ok), NCM / 2 + 1);
	assert_int_equal(atomic_load(&td.notfound), 1);
	assert_int_equal(atomic_load(&td.other), 0);
	assert_int_equal(ct_list(&t, &KB_GVR_CONFIGMAPS, "default", "batch=yes",
			     NULL, NULL),
	    NCM / 2);
	kb_msg *rep = NULL;
	assert_int_equal(kb_api_get(t.c, &KB_GVR_CONFIGMAPS, "default", name,
			     &rep),
	    0);
	assert_true(kb_mp_streq(kb_msg_body(rep), "data.k", "v"));
	kb_msg_free(rep);

	/* bad input: an error, the body taken all the same (ASan checks) */
	assert_int_equal(kb_api_batch_create(NULL, &KB_GVR_CONFIGMAPS,
			     "default", cm("x"), done, &ty),
	    KB_EINVAL);
	b = kb_api_batch_new(t.c, 0); /* 0: one at a time */
	assert_non_null(b);
	assert_int_equal(kb_api_batch_create(b, NULL, "default", cm("x"), done,
			     &ty),
	    KB_EINVAL);
	assert_int_equal(kb_api_batch_create(b, &KB_GVR_CONFIGMAPS, "default",
			     kb_body_new("\xc1", 1), done, &ty),
	    KB_EINVAL);
	kb_api_batch_free(b);
	assert_null(kb_api_batch_new(NULL, 4));
}

static kb_body *rs_body(const char *name, int replicas)
{
	return kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s}},"
			  " s:{s:[{s:s, s:s}]}}}}",
	    "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", "name",
	    name, "spec", "replicas", replicas, "selector", "matchLabels",
	    "app", name, "template", "metadata", "labels", "app", name, "spec",
	    "containers", "name", "c", "image", "busybox");
}

static int64_t rs_int(const char *path)
{
	return ct_get_int(&t, &KB_GVR_REPLICASETS, "default", "many", path);
}

static int pods(void)
{
	return ct_list(&t, &KB_GVR_PODS, "default", "app=many", NULL, NULL);
}

/* 250 pods in bursts of 100 with 16 creates in flight: exactly 250, then
 * exactly 20 after a scale down; the ReplicaSet deleted, the garbage
 * collector removes the rest. */
static void test_replicaset_burst(void **state)
{
	kb_msg *m =
	    ct_create(&t, &KB_GVR_REPLICASETS, "default", rs_body("many", 250));
	assert_non_null(m);
	const char *u;
	size_t ul;
	char uid[64];
	assert_true(kb_mp_str(kb_msg_body(m), "metadata.uid", &u, &ul));
	snprintf(uid, sizeof(uid), "%.*s", (int)ul, u);
	kb_msg_free(m);
	assert_true(CT_WAIT(30000, rs_int("status.replicas") == 250));
	assert_int_equal(pods(), 250);
	ct_sleep_ms(500); /* no extra pod on its way */
	assert_int_equal(pods(), 250);
	assert_int_equal(rs_int("status.replicas"), 250);

	kb_body *p = kb_mp_body("{s:{s:i}}", "spec", "replicas", 20);
	assert_int_equal(kb_api_patch(t.c, &KB_GVR_REPLICASETS, "default",
			     "many", NULL, "merge", p, NULL),
	    0);
	assert_true(CT_WAIT(30000, pods() == 20));
	assert_true(CT_WAIT(5000, rs_int("status.replicas") == 20));
	ct_sleep_ms(500);
	assert_int_equal(pods(), 20);

	/* up again, then the owner goes: its dependents follow */
	p = kb_mp_body("{s:{s:i}}", "spec", "replicas", 300);
	assert_int_equal(kb_api_patch(t.c, &KB_GVR_REPLICASETS, "default",
			     "many", NULL, "merge", p, NULL),
	    0);
	assert_true(CT_WAIT(30000, rs_int("status.replicas") == 300));
	kb_body *o = kb_mp_body("{s:s}", "propagationPolicy", "Background");
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_REPLICASETS, "default",
			     "many", o, NULL),
	    0);
	assert_true(CT_WAIT(30000, pods() == 0));
	assert_false(ct_exists(&t, &KB_GVR_REPLICASETS, "default", "many"));
}

/* --- an informer's cache holds objects exactly as the API has them ---------------
 * (its events are read without decoding them whole: strings of every
 * length class, maps of more than 15 keys, integers of several sizes) */

struct seen {
	atomic_int adds, updates, dels;
};

static void s_add(void *arg, const msgpack_object *o)
{
	atomic_fetch_add(&((struct seen *)arg)->adds, 1);
}

static void s_update(void *arg, const msgpack_object *a,
    const msgpack_object *b)
{
	if (a != b)
		atomic_fetch_add(&((struct seen *)arg)->updates, 1);
}

static void s_del(void *arg, const msgpack_object *o)
{
	atomic_fetch_add(&((struct seen *)arg)->dels, 1);
}

static bool cached_equals_api(struct kb_informer *inf, const char *name)
{
	kb_msg *rep = NULL;
	kb_body *b = kb_informer_get(inf, "default", name);
	bool eq = false;
	if (b &&
	    kb_api_get(t.c, &KB_GVR_CONFIGMAPS, "default", name, &rep) == 0)
		eq = msgpack_object_equal(*kb_body_obj(b), *kb_msg_body(rep));
	kb_msg_free(rep);
	if (b)
		kb_body_unref(b);
	return eq;
}

static void test_informer_objects(void **state)
{
	struct seen sn = { 0 };
	static const struct kb_informer_handlers h = { s_add, s_update, s_del };
	struct kb_informer_opts o = { .label_selector = "inf=yes" };
	struct kb_informer *inf =
	    kb_informer_new(t.c, &KB_GVR_CONFIGMAPS, &o, &h, &sn);
	assert_non_null(inf);
	assert_int_equal(kb_informer_start(inf), 0);
	assert_true(kb_informer_wait_synced(inf, 10000));

	static char big[70001], mid[301];
	memset(big, 'b', sizeof(big) - 1);
	memset(mid, 'm', sizeof(mid) - 1);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	/* data: 20 keys, so a map16 */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	kb_mp_pack(&pk, "s:s, s:s", "apiVersion", "v1", "kind", "ConfigMap");
	kb_mp_pack(&pk, "s:{s:s, s:{s:s}, s:{s:s, s:s}}", "metadata", "name",
	    "shapes", "labels", "inf", "yes", "annotations", "a", mid, "b",
	    big);
	kb_mp_pack_cstr(&pk, "data");
	msgpack_pack_map(&pk, 20);
	for (int i = 0; i < 20; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%02d", i);
		kb_mp_pack_cstr(&pk, k);
		kb_mp_pack_cstr(&pk, i % 2 ? mid : "v");
	}
	kb_msg *m = ct_create(&t, &KB_GVR_CONFIGMAPS, "default",
	    kb_body_from_sbuf(&sb));
	msgpack_sbuffer_destroy(&sb);
	assert_non_null(m);
	kb_msg_free(m);
	assert_true(CT_WAIT(10000, atomic_load(&sn.adds) == 1));
	assert_true(cached_equals_api(inf, "shapes"));

	kb_body *p = kb_mp_body("{s:{s:s}}", "data", "k00", "changed");
	assert_int_equal(kb_api_patch(t.c, &KB_GVR_CONFIGMAPS, "default",
			     "shapes", NULL, "merge", p, NULL),
	    0);
	assert_true(CT_WAIT(10000, atomic_load(&sn.updates) == 1));
	assert_true(cached_equals_api(inf, "shapes"));
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_CONFIGMAPS, "default",
			     "shapes", NULL, NULL),
	    0);
	assert_true(CT_WAIT(10000, atomic_load(&sn.dels) == 1));
	assert_int_equal(kb_informer_len(inf), 0);
	kb_informer_free(inf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_batch),
		cmocka_unit_test(test_replicaset_burst),
		cmocka_unit_test(test_informer_objects),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/unit/test_api_busfields.c — the `api` service reads a request's
 * fields and object from the body's bytes in one pass (busapi.c,
 * fields_of_bytes) rather than through the SDK's decoded tree and
 * api_json_from_mp: both readings must agree on every body the first one
 * accepts (duplicated keys, bin strings, odd types, nesting near the SDK's
 * limit, random corruptions), and it must accept the usual ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "busapi.h"
#include "codec.h"

struct buf {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void buf_init(struct buf *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void str(struct buf *b, const char *s)
{
	kb_mp_pack_cstr(&b->pk, s);
}

static void bin(struct buf *b, const char *s)
{
	msgpack_pack_bin(&b->pk, strlen(s));
	msgpack_pack_bin_body(&b->pk, s, strlen(s));
}

static void pod(struct buf *b, const char *name)
{
	msgpack_pack_map(&b->pk, 4);
	str(b, "apiVersion");
	str(b, "v1");
	str(b, "kind");
	str(b, "Pod");
	str(b, "metadata");
	msgpack_pack_map(&b->pk, 2);
	str(b, "name");
	str(b, name);
	str(b, "labels");
	msgpack_pack_map(&b->pk, 1);
	str(b, "app");
	str(b, "x");
	str(b, "spec");
	msgpack_pack_map(&b->pk, 2);
	str(b, "containers");
	msgpack_pack_array(&b->pk, 1);
	msgpack_pack_map(&b->pk, 4);
	str(b, "name");
	str(b, "c");
	str(b, "image");
	str(b, "busybox");
	str(b, "ports");
	msgpack_pack_array(&b->pk, 1);
	msgpack_pack_map(&b->pk, 1);
	str(b, "containerPort");
	msgpack_pack_int(&b->pk, 8080);
	str(b, "r");
	msgpack_pack_array(&b->pk, 6);
	msgpack_pack_double(&b->pk, 0.5);
	msgpack_pack_float(&b->pk, 1.25f);
	msgpack_pack_uint64(&b->pk, UINT64_MAX);
	msgpack_pack_int64(&b->pk, INT64_MIN);
	msgpack_pack_nil(&b->pk);
	msgpack_pack_true(&b->pk);
	str(b, "terminationGracePeriodSeconds");
	msgpack_pack_int(&b->pk, 30);
}

/* Both readings of the bytes; fast must not decline when want_fast. */
static void same(const void *data, size_t len, bool want_fast)
{
	/* an exact-size copy, so ASan sees a read past the end */
	char *exact = malloc(len ? len : 1);
	memcpy(exact, data, len);
	json_t *fast = api_busapi_fields(exact, len, true);
	if (want_fast && fast == NULL)
		fail_msg("the one-pass reading declined a usual body");
	if (fast) {
		json_t *slow = api_busapi_fields(exact, len, false);
		assert_non_null(slow);
		if (!json_equal(fast, slow)) {
			char *a = json_dumps(fast, JSON_COMPACT | JSON_SORT_KEYS);
			char *b = json_dumps(slow, JSON_COMPACT | JSON_SORT_KEYS);
			fail_msg("readings differ:\n fast %s\n slow %s", a, b);
		}
		json_decref(slow);
	}
	json_decref(fast);
	free(exact);
}

static void test_usual(void **state)
{
	(void)state;
	struct buf b;
	/* a create */
	buf_init(&b);
	msgpack_pack_map(&b.pk, 5);
	str(&b, "group");
	str(&b, "");
	str(&b, "version");
	str(&b, "v1");
	str(&b, "resource");
	str(&b, "pods");
	str(&b, "namespace");
	str(&b, "default");
	str(&b, "object");
	pod(&b, "p1");
	same(b.sb.data, b.sb.size, true);
	msgpack_sbuffer_destroy(&b.sb);
	/* a binding: name, subresource, then the object */
	buf_init(&b);
	msgpack_pack_map(&b.pk, 7);
	str(&b, "group");
	str(&b, "");
	str(&b, "version");
	str(&b, "v1");
	str(&b, "resource");
	str(&b, "pods");
	str(&b, "namespace");
	str(&b, "default");
	str(&b, "name");
	str(&b, "p1");
	str(&b, "subresource");
	str(&b, "binding");
	str(&b, "object");
	msgpack_pack_map(&b.pk, 1);
	str(&b, "target");
	msgpack_pack_map(&b.pk, 1);
	str(&b, "name");
	str(&b, "node-1");
	same(b.sb.data, b.sb.size, true);
	msgpack_sbuffer_destroy(&b.sb);
	/* a list with every query field, and a patch */
	buf_init(&b);
	msgpack_pack_map(&b.pk, 12);
	str(&b, "resource");
	str(&b, "pods");
	str(&b, "labelSelector");
	str(&b, "app=x");
	str(&b, "fieldSelector");
	str(&b, "spec.nodeName=");
	str(&b, "limit");
	msgpack_pack_int(&b.pk, 500);
	str(&b, "continue");
	str(&b, "abc");
	str(&b, "resourceVersion");
	str(&b, "0");
	str(&b, "fieldManager");
	str(&b, "m");
	str(&b, "fieldValidation");
	str(&b, "Strict");
	str(&b, "patchType");
	str(&b, "merge");
	str(&b, "patch");
	msgpack_pack_map(&b.pk, 1);
	str(&b, "metadata");
	msgpack_pack_nil(&b.pk);
	str(&b, "options");
	msgpack_pack_map(&b.pk, 0);
	str(&b, "topic");
	str(&b, "t");
	same(b.sb.data, b.sb.size, true);
	msgpack_sbuffer_destroy(&b.sb);
}

static void test_odd(void **state)
{
	(void)state;
	struct buf b;
	/* duplicated keys: the first wins, even when it is not a string;
	 * bin values and a bin key; odd integer types */
	buf_init(&b);
	msgpack_pack_map(&b.pk, 11);
	str(&b, "name");
	msgpack_pack_int(&b.pk, 5);
	str(&b, "name");
	str(&b, "second");
	str(&b, "namespace");
	bin(&b, "ns-as-bin");
	bin(&b, "resource");
	str(&b, "pods");
	str(&b, "limit");
	msgpack_pack_uint64(&b.pk, UINT64_MAX);
	str(&b, "continue");
	msgpack_pack_int64(&b.pk, -7);
	str(&b, "group");
	msgpack_pack_double(&b.pk, 2.0);
	str(&b, "object");
	msgpack_pack_nil(&b.pk);
	str(&b, "object");
	pod(&b, "x");
	msgpack_pack_int(&b.pk, 7);
	str(&b, "int key");
	str(&b, "version");
	str(&b, "v\0x");
	same(b.sb.data, b.sb.size, true);
	msgpack_sbuffer_destroy(&b.sb);
	/* patch before object; options only; negative limit */
	buf_init(&b);
	msgpack_pack_map(&b.pk, 3);
	str(&b, "patch");
	msgpack_pack_array(&b.pk, 1);
	str(&b, "p");
	str(&b, "limit");
	msgpack_pack_int(&b.pk, -3);
	str(&b, "object");
	str(&b, "just a string");
	same(b.sb.data, b.sb.size, true);
	msgpack_sbuffer_destroy(&b.sb);
	buf_init(&b);
	msgpack_pack_map(&b.pk, 1);
	str(&b, "options");
	msgpack_pack_map(&b.pk, 1);
	str(&b, "gracePeriodSeconds");
	msgpack_pack_int(&b.pk, 0);
	same(b.sb.data, b.sb.size, true);
	msgpack_sbuffer_destroy(&b.sb);
	/* not a map; empty map; nothing; trailing bytes */
	same("\x92\x01\x02", 3, false);
	same("\x80", 1, true);
	same("", 0, false);
	same("\x80\x80", 2, false);
	same("\xc1", 1, false);
	/* an ext: in an unknown field and in the object */
	same("\x82\xa1x\xd4\x01\x02\xa4name\xa1n", 11, false);
	same("\x81\xa6object\x81\xa1k\xd4\x01\x02", 13, false);
	/* invalid UTF-8 in the object and in a field */
	same("\x81\xa6object\x81\xa1k\xa2\xff\xfe", 14, false);
	same("\x81\xa4name\xa2\xff\xfe", 9, true);
}

/* The object nested `levels` deep: around the SDK's limit of 32. */
static void test_depth(void **state)
{
	(void)state;
	for (int levels = 25; levels <= 40; levels++) {
		for (int scalar = 0; scalar < 2; scalar++) {
			struct buf b;
			buf_init(&b);
			msgpack_pack_map(&b.pk, 2);
			str(&b, "name");
			str(&b, "n");
			str(&b, levels % 2 ? "object" : "other");
			for (int i = 0; i < levels; i++)
				msgpack_pack_array(&b.pk, 1);
			if (scalar)
				msgpack_pack_int(&b.pk, 1);
			else
				msgpack_pack_array(&b.pk, 0);
			same(b.sb.data, b.sb.size, levels < 29);
			msgpack_sbuffer_destroy(&b.sb);
		}
	}
}

/* Random corruptions of a usual body: wherever the one pass reads one,
 * it reads what the tree reads. */
static void test_corrupt(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	msgpack_pack_map(&b.pk, 6);
	str(&b, "group");
	str(&b, "");
	str(&b, "resource");
	str(&b, "pods");
	str(&b, "name");
	str(&b, "p");
	str(&b, "limit");
	msgpack_pack_int(&b.pk, 3);
	str(&b, "object");
	pod(&b, "p1");
	str(&b, "patch");
	pod(&b, "p2");
	unsigned seed = 12345;
	char *m = malloc(b.sb.size);
	size_t accepted = 0;
	for (int round = 0; round < 20000; round++) {
		memcpy(m, b.sb.data, b.sb.size);
		size_t len = b.sb.size;
		int flips = 1 + (int)(rand_r(&seed) % 3);
		for (int f = 0; f < flips; f++)
			m[rand_r(&seed) % len] = (char)rand_r(&seed);
		if (rand_r(&seed) % 4 == 0)
			len = rand_r(&seed) % len;
		json_t *fast = api_busapi_fields(m, len, true);
		accepted += fast != NULL;
		json_decref(fast);
		same(m, len, false);
	}
	/* most corruptions leave something both read */
	assert_true(accepted > 1000);
	free(m);
	msgpack_sbuffer_destroy(&b.sb);
}

/* api_mp_body_int against kb_mp_int on the SDK's tree. */
static void same_int(const void *data, size_t len, bool want_read)
{
	char *exact = malloc(len ? len : 1);
	memcpy(exact, data, len);
	bool found = false;
	int64_t v = 0, w = 0;
	bool read = api_mp_body_int(exact, len, "rev", &found, &v);
	if (want_read)
		assert_true(read);
	if (read) {
		kb_body *b = kb_body_new(exact, len);
		bool tree = kb_mp_int(kb_body_obj(b), "rev", &w);
		assert_int_equal(found, tree);
		if (found)
			assert_int_equal(v, w);
		kb_body_unref(b);
	}
	free(exact);
}

#define SAME_INT(lit, want) same_int(lit, sizeof(lit) - 1, want)

static void test_reply_int(void **state)
{
	(void)state;
	struct buf b;
	/* a put's reply: rev, kv, prev */
	buf_init(&b);
	msgpack_pack_map(&b.pk, 3);
	str(&b, "rev");
	msgpack_pack_int64(&b.pk, 123456789);
	str(&b, "kv");
	msgpack_pack_map(&b.pk, 3);
	str(&b, "key");
	str(&b, "/registry/pods/default/p");
	str(&b, "mod_rev");
	msgpack_pack_int64(&b.pk, 123456789);
	str(&b, "value");
	msgpack_pack_bin(&b.pk, 3);
	msgpack_pack_bin_body(&b.pk, "\x81\xa1" "a", 3);
	str(&b, "prev");
	msgpack_pack_nil(&b.pk);
	same_int(b.sb.data, b.sb.size, true);
	unsigned seed = 99;
	char *m = malloc(b.sb.size);
	for (int round = 0; round < 20000; round++) {
		memcpy(m, b.sb.data, b.sb.size);
		size_t len = b.sb.size;
		m[rand_r(&seed) % len] = (char)rand_r(&seed);
		if (rand_r(&seed) % 4 == 0)
			len = rand_r(&seed) % len;
		same_int(m, len, false);
	}
	free(m);
	msgpack_sbuffer_destroy(&b.sb);
	/* rev after others, not an integer, too big, negative, twice, a
	 * bin key; not a map; nothing */
	SAME_INT("\x82\xa2kv\xc0\xa3rev\x05", true);
	SAME_INT("\x81\xa3rev\xa1x", true);
	SAME_INT("\x81\xa3rev\xcf\xff\xff\xff\xff\xff\xff\xff\xff", true);
	SAME_INT("\x81\xa3rev\xd0\x80", true);
	SAME_INT("\x82\xa3rev\xc0\xa3rev\x07", true);
	SAME_INT("\x82\xc4\x03rev\x01\xa3rev\x07", true);
	SAME_INT("\x91\x01", true);
	SAME_INT("", false);
	SAME_INT("\x81\xa3rev\x05\x00", false);
	SAME_INT("\x82\xa1x\xd4\x01\x02\xa3rev\x05", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usual),
		cmocka_unit_test(test_odd),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_reply_int),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

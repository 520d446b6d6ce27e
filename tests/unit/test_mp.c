/* tests/unit/test_mp.c — the SDK's msgpack helpers (sdk/src/mp.c), bodies
 * (sdk/src/body.c) and error helpers (sdk/src/err.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>

/* --- helpers ------------------------------------------------------------------ */

struct packbuf {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void pb_init(struct packbuf *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static void pb_reset(struct packbuf *p)
{
	msgpack_sbuffer_clear(&p->sb);
}

static void pb_free(struct packbuf *p)
{
	msgpack_sbuffer_destroy(&p->sb);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void assert_bytes_equal(const struct packbuf *got,
    const struct packbuf *want)
{
	assert_int_equal(got->sb.size, want->sb.size);
	assert_memory_equal(got->sb.data, want->sb.data, want->sb.size);
}

/* A body built by format; the test fails if the format is refused. */
static kb_body *body(const char *fmt, ...)
{
	struct packbuf p;
	pb_init(&p);
	va_list ap;
	va_start(ap, fmt);
	int rc = kb_mp_vpack(&p.pk, fmt, ap);
	va_end(ap);
	assert_int_equal(rc, 0);
	kb_body *b = kb_body_from_sbuf(&p.sb);
	assert_non_null(b);
	pb_free(&p);
	return b;
}

/* The object every path test reads. Float32 1.5 comes in as raw bytes. */
static kb_body *pod(void)
{
	static const unsigned char f32[] = { 0xca, 0x3f, 0xc0, 0x00, 0x00 };
	return body("{"
		    " s:{s:s, s:s, s:{s:s, s:s, s:s}},"
		    " s:{s:i, s:b, s:f, s:["
		    "     {s:s, s:[{s:i}, {s:i}]},"
		    "     {s:s, s:s}],"
		    "   s:[[i, i], [i, [i, i]]]},"
		    " s:i, s:u, s:n, s:r, i:s, s:s"
		    "}",
	    "metadata", "name", "web", "namespace", "default", "labels",
	    "app.kubernetes.io/name", "web", "tier", "front", "back\\slash",
	    "bs", "spec", "replicas", 3, "paused", 0, "ratio", 0.5,
	    "containers", "name", "c0", "ports", "containerPort", 80,
	    "containerPort", 443, "name", "c1", "image", "busybox", "matrix", 1,
	    2, 3, 4, 5, "neg", -7, "big", (uint64_t)UINT64_MAX, "nothing",
	    "f32", f32, sizeof(f32), 5, "five", "s", "str");
}

/* --- kb_mp_key, kb_mp_get ---------------------------------------------------------- */

static void test_key(void **state)
{
	kb_body *b = pod();
	const msgpack_object *o = kb_body_obj(b);
	assert_non_null(o);
	const msgpack_object *md = kb_mp_key(o, "metadata");
	assert_non_null(md);
	assert_int_equal(md->type, MSGPACK_OBJECT_MAP);
	assert_true(kb_mp_is(kb_mp_key(md, "name"), "web"));
	/* keyn compares exactly `keylen` bytes. */
	assert_true(
	    kb_mp_is(kb_mp_keyn(md, "namespace-and-more", 9), "default"));
	assert_null(kb_mp_keyn(md, "nam", 3));
	assert_null(kb_mp_key(o, "absent"));
	/* Not a map. */
	assert_null(kb_mp_key(kb_mp_key(o, "s"), "x"));
	assert_null(kb_mp_key(NULL, "x"));
	/* Keys that are not strings are skipped, not matched. */
	assert_null(kb_mp_key(o, "5"));
	kb_body_unref(b);
}

static void test_get_paths(void **state)
{
	kb_body *b = pod();
	const msgpack_object *o = kb_body_obj(b);
	assert_non_null(o);

	/* Nested maps. */
	assert_true(kb_mp_streq(o, "metadata.name", "web"));
	assert_true(kb_mp_streq(o, "metadata.labels.tier", "front"));
	/* Indexes, nested. */
	int64_t v = 0;
	assert_true(
	    kb_mp_int(o, "spec.containers[0].ports[1].containerPort", &v));
	assert_int_equal(v, 443);
	assert_true(kb_mp_streq(o, "spec.containers[1].image", "busybox"));
	assert_true(kb_mp_int(o, "spec.matrix[1][1][0]", &v));
	assert_int_equal(v, 4);
	assert_true(kb_mp_int(o, "spec.matrix[0][1]", &v));
	assert_int_equal(v, 2);
	const msgpack_object *m = kb_mp_get(o, "spec.matrix[1]");
	assert_non_null(m);
	assert_int_equal(m->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(m->via.array.size, 2);
	/* An index first, on an array. */
	assert_true(kb_mp_int(m, "[1][1]", &v));
	assert_int_equal(v, 5);
	/* Escaped dots, and an escaped backslash. */
	assert_true(kb_mp_streq(o, "metadata.labels.app\\.kubernetes\\.io/name",
	    "web"));
	assert_true(kb_mp_streq(o, "metadata.labels.back\\\\slash", "bs"));
	assert_null(kb_mp_get(o, "metadata.labels.app.kubernetes.io/name"));
	/* The empty path is the object itself. */
	assert_ptr_equal(kb_mp_get(o, ""), o);
	/* nil is a value, not an absence. */
	const msgpack_object *nil = kb_mp_get(o, "nothing");
	assert_non_null(nil);
	assert_int_equal(nil->type, MSGPACK_OBJECT_NIL);
	/* Every pointer points into the object. */
	assert_ptr_equal(kb_mp_get(o, "metadata"), kb_mp_key(o, "metadata"));
	kb_body_unref(b);
}

static void test_get_missing_and_wrong_types(void **state)
{
	kb_body *b = pod();
	const msgpack_object *o = kb_body_obj(b);
	assert_non_null(o);

	/* Missing steps, first, middle and last. */
	assert_null(kb_mp_get(o, "status"));
	assert_null(kb_mp_get(o, "metadata.uid"));
	assert_null(kb_mp_get(o, "metadata.nope.name"));
	assert_null(kb_mp_get(o, "spec.containers[2]"));
	assert_null(kb_mp_get(o, "spec.containers[0].ports[5].containerPort"));
	assert_null(kb_mp_get(o, "spec.matrix[0][2]"));
	/* Wrong types: an index on a map, a key on an array or a scalar. */
	assert_null(kb_mp_get(o, "metadata[0]"));
	assert_null(kb_mp_get(o, "spec.containers.name"));
	assert_null(kb_mp_get(o, "metadata.name.first"));
	assert_null(kb_mp_get(o, "spec.replicas[0]"));
	assert_null(kb_mp_get(o, "nothing.x"));
	/* Malformed indexes. */
	assert_null(kb_mp_get(o, "spec.containers[]"));
	assert_null(kb_mp_get(o, "spec.containers[x]"));
	assert_null(kb_mp_get(o, "spec.containers[0"));
	assert_null(kb_mp_get(o, "spec.containers[-1]"));
	/* No object at all. */
	assert_null(kb_mp_get(NULL, "metadata"));
	assert_null(kb_mp_get(NULL, ""));
	/* The typed reads say false for all of these. */
	int64_t i = 42;
	assert_false(kb_mp_int(o, "metadata.nope", &i));
	assert_false(kb_mp_int(o, "metadata[0]", &i));
	assert_int_equal(i, 42);
	kb_body_unref(b);
}

static void test_get_long_key(void **state)
{
	/* A step's key may be up to 255 bytes. */
	char key[256], path[300];
	memset(key, 'k', 255);
	key[255] = '\0';
	kb_body *b = body("{s:{s:i}}", "top", key, 1);
	const msgpack_object *o = kb_body_obj(b);
	snprintf(path, sizeof(path), "top.%s", key);
	int64_t v = 0;
	assert_true(kb_mp_int(o, path, &v));
	assert_int_equal(v, 1);
	kb_body_unref(b);
}

/* --- typed reads ---------------------------------------------------------------------- */

static void test_typed_reads(void **state)
{
	kb_body *b = pod();
	const msgpack_object *o = kb_body_obj(b);
	assert_non_null(o);

	const char *s = NULL;
	size_t len = 0;
	assert_true(kb_mp_str(o, "metadata.namespace", &s, &len));
	assert_int_equal(len, 7);
	assert_memory_equal(s, "default", 7);
	assert_true(kb_mp_str(o, "metadata.name", &s, NULL)); /* len optional */
	assert_memory_equal(s, "web", 3);
	s = "untouched";
	assert_false(kb_mp_str(o, "spec.replicas", &s, &len));
	assert_string_equal(s, "untouched");

	int64_t i = 0;
	assert_true(kb_mp_int(o, "spec.replicas", &i));
	assert_int_equal(i, 3);
	assert_true(kb_mp_int(o, "neg", &i));
	assert_int_equal(i, -7);
	i = 99;
	assert_false(kb_mp_int(o, "big", &i)); /* does not fit */
	assert_false(kb_mp_int(o, "metadata.name", &i));
	assert_false(kb_mp_int(o, "spec.ratio", &i));
	assert_int_equal(i, 99);

	uint64_t u = 0;
	assert_true(kb_mp_uint(o, "big", &u));
	assert_true(u == UINT64_MAX);
	assert_true(kb_mp_uint(o, "spec.replicas", &u));
	assert_true(u == 3);
	u = 99;
	assert_false(kb_mp_uint(o, "neg", &u));
	assert_true(u == 99);

	bool flag = true;
	assert_true(kb_mp_bool(o, "spec.paused", &flag));
	assert_false(flag);
	flag = true;
	assert_false(kb_mp_bool(o, "spec.replicas", &flag));
	assert_true(flag);

	double d = 0;
	assert_true(kb_mp_double(o, "spec.ratio", &d));
	assert_true(d == 0.5);
	assert_true(kb_mp_double(o, "f32", &d));
	assert_true(d == 1.5);
	assert_true(kb_mp_double(o, "neg", &d)); /* integers read as doubles */
	assert_true(d == -7.0);
	d = 9;
	assert_false(kb_mp_double(o, "metadata.name", &d));
	assert_false(kb_mp_double(o, "nothing", &d));
	assert_true(d == 9);

	assert_true(kb_mp_streq(o, "metadata.name", "web"));
	assert_false(kb_mp_streq(o, "metadata.name", "we"));
	assert_false(kb_mp_streq(o, "metadata.name", "webs"));
	assert_false(kb_mp_streq(o, "spec.replicas", "3"));
	assert_false(kb_mp_streq(o, "absent", ""));

	char *dup = kb_mp_strdup(o, "spec.containers[1].image");
	assert_non_null(dup);
	assert_string_equal(dup, "busybox");
	free(dup);
	assert_null(kb_mp_strdup(o, "spec.replicas"));
	assert_null(kb_mp_strdup(o, "absent"));

	/* A NULL path reads the object itself. */
	const msgpack_object *r = kb_mp_get(o, "spec.replicas");
	assert_true(kb_mp_int(r, NULL, &i));
	assert_int_equal(i, 3);
	assert_true(kb_mp_is(kb_mp_get(o, "s"), "str"));
	assert_false(kb_mp_is(NULL, "str"));
	assert_false(kb_mp_is(r, "3"));
	kb_body_unref(b);
}

/* --- kb_mp_pack ---------------------------------------------------------------------- */

static void test_pack_scalars(void **state)
{
	struct packbuf got, want;
	pb_init(&got);
	pb_init(&want);
	/* [1, "x"] */
	static const unsigned char raw[] = { 0x92, 0x01, 0xa1, 'x' };
	kb_body *ob = body("{s:i}", "k", 7);
	const msgpack_object *obj = kb_body_obj(ob);

	assert_int_equal(kb_mp_pack(&got.pk, "s s S i I u b b f n o o r", "str",
			     (const char *)NULL, "bytes-and-more", (size_t)5,
			     -5, (int64_t)INT64_MIN, (uint64_t)UINT64_MAX, 1, 0,
			     2.25, obj, (const msgpack_object *)NULL, raw,
			     sizeof(raw)),
	    0);
	pk_str(&want.pk, "str");
	msgpack_pack_nil(&want.pk);
	pk_str(&want.pk, "bytes");
	msgpack_pack_int64(&want.pk, -5);
	msgpack_pack_int64(&want.pk, INT64_MIN);
	msgpack_pack_uint64(&want.pk, UINT64_MAX);
	msgpack_pack_true(&want.pk);
	msgpack_pack_false(&want.pk);
	msgpack_pack_double(&want.pk, 2.25);
	msgpack_pack_nil(&want.pk);
	msgpack_pack_object(&want.pk, *obj);
	msgpack_pack_nil(&want.pk);
	msgpack_sbuffer_write(&want.sb, (const char *)raw, sizeof(raw));
	assert_bytes_equal(&got, &want);

	/* 'b' takes any int as a truth value. */
	pb_reset(&got);
	pb_reset(&want);
	assert_int_equal(kb_mp_pack(&got.pk, "b", 42), 0);
	msgpack_pack_true(&want.pk);
	assert_bytes_equal(&got, &want);

	/* An empty format packs nothing. */
	pb_reset(&got);
	assert_int_equal(kb_mp_pack(&got.pk, ""), 0);
	assert_int_equal(kb_mp_pack(&got.pk, " ,: \t\n"), 0);
	assert_int_equal(got.sb.size, 0);

	kb_body_unref(ob);
	pb_free(&got);
	pb_free(&want);
}

static void test_pack_containers(void **state)
{
	struct packbuf got, want;
	pb_init(&got);
	pb_init(&want);

	assert_int_equal(kb_mp_pack(&got.pk,
			     "{s:s, s:{s:i, s:[i, {s:b}, [], {}]}, s:[[s], n]}",
			     "kind", "Pod", "spec", "replicas", 3, "list", 1,
			     "ok", 1, "deep", "x"),
	    0);
	msgpack_pack_map(&want.pk, 3);
	pk_str(&want.pk, "kind");
	pk_str(&want.pk, "Pod");
	pk_str(&want.pk, "spec");
	msgpack_pack_map(&want.pk, 2);
	pk_str(&want.pk, "replicas");
	msgpack_pack_int64(&want.pk, 3);
	pk_str(&want.pk, "list");
	msgpack_pack_array(&want.pk, 4);
	msgpack_pack_int64(&want.pk, 1);
	msgpack_pack_map(&want.pk, 1);
	pk_str(&want.pk, "ok");
	msgpack_pack_true(&want.pk);
	msgpack_pack_array(&want.pk, 0);
	msgpack_pack_map(&want.pk, 0);
	pk_str(&want.pk, "deep");
	msgpack_pack_array(&want.pk, 2);
	msgpack_pack_array(&want.pk, 1);
	pk_str(&want.pk, "x");
	msgpack_pack_nil(&want.pk);
	assert_bytes_equal(&got, &want);

	/* Separators are optional and free. */
	pb_reset(&got);
	assert_int_equal(kb_mp_pack(&got.pk, "{ss s{si s[i{sb}[]{}]} s[[s]n]}",
			     "kind", "Pod", "spec", "replicas", 3, "list", 1,
			     "ok", 1, "deep", "x"),
	    0);
	assert_bytes_equal(&got, &want);

	/* Several values side by side at the top level. */
	pb_reset(&got);
	pb_reset(&want);
	assert_int_equal(kb_mp_pack(&got.pk, "[] {} i", 9), 0);
	msgpack_pack_array(&want.pk, 0);
	msgpack_pack_map(&want.pk, 0);
	msgpack_pack_int64(&want.pk, 9);
	assert_bytes_equal(&got, &want);

	/* A map's values may be any value, its keys too. */
	pb_reset(&got);
	pb_reset(&want);
	assert_int_equal(kb_mp_pack(&got.pk, "{i:[u], s:o}", 1, (uint64_t)2,
			     "o", (const msgpack_object *)NULL),
	    0);
	msgpack_pack_map(&want.pk, 2);
	msgpack_pack_int64(&want.pk, 1);
	msgpack_pack_array(&want.pk, 1);
	msgpack_pack_uint64(&want.pk, 2);
	pk_str(&want.pk, "o");
	msgpack_pack_nil(&want.pk);
	assert_bytes_equal(&got, &want);

	pb_free(&got);
	pb_free(&want);
}

static void test_pack_bad_formats(void **state)
{
	static const char *const bad[] = {
		"x",        /* unknown letter */
		"{s:s",     /* unclosed map */
		"[i, i",    /* unclosed array */
		"{s}",      /* a key without its value */
		"{s:i, s}", /* the same, later */
		"}",        /* a close with no open */
		"]",
		"[s}", /* mismatched close */
		"{s:i]",
		"{s:[i}]",
		"[{s:i]",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct packbuf p;
		pb_init(&p);
		int rc = kb_mp_pack(&p.pk, bad[k], "a", 1, "b", 2);
		if (rc != KB_EINVAL)
			fail_msg("format \"%s\": got %d, want KB_EINVAL",
			    bad[k], rc);
		pb_free(&p);
		assert_null(kb_mp_body(bad[k], "a", 1, "b", 2));
	}

	/* What came before the bad letter is packed. */
	struct packbuf p;
	pb_init(&p);
	assert_int_equal(kb_mp_pack(&p.pk, "i i ?", 1, 2), KB_EINVAL);
	assert_int_equal(p.sb.size, 2);
	pb_free(&p);
}

static void test_pack_body_and_cstr(void **state)
{
	kb_body *b =
	    kb_mp_body("{s:s, s:[i, f]}", "name", "kubus", "v", 1, 0.25);
	assert_non_null(b);
	const msgpack_object *o = kb_body_obj(b);
	assert_non_null(o);
	assert_true(kb_mp_streq(o, "name", "kubus"));
	double d = 0;
	assert_true(kb_mp_double(o, "v[1]", &d));
	assert_true(d == 0.25);
	kb_body_unref(b);

	struct packbuf got, want;
	pb_init(&got);
	pb_init(&want);
	kb_mp_pack_cstr(&got.pk, "abc");
	kb_mp_pack_cstr(&got.pk, NULL);
	kb_mp_pack_cstr(&got.pk, "");
	pk_str(&want.pk, "abc");
	msgpack_pack_nil(&want.pk);
	pk_str(&want.pk, "");
	assert_bytes_equal(&got, &want);
	pb_free(&got);
	pb_free(&want);
}

/* kb_mp_body packs on the stack, then on the heap: the same bytes as
 * kb_mp_pack into an sbuffer, from a few bytes to well past both; and
 * kb_body_from_sbuf, which copies a body much smaller than its sbuffer,
 * keeps the bytes and empties the sbuffer either way. */
static void test_body_sizes(void **state)
{
	static const size_t lens[] = { 0, 1, 100, 2000, 2040, 2048, 2100,
		5000, 8000, 8192, 9000, 20000, 100000 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *s = malloc(lens[i] + 1);
		assert_non_null(s);
		memset(s, 'x', lens[i]);
		s[lens[i]] = '\0';
		for (int shape = 0; shape < 2; shape++) {
			const char *fmt = shape ? "{s:s, s:[s, i]}" : "s";
			struct packbuf want;
			pb_init(&want);
			kb_body *b;
			if (shape) {
				b = kb_mp_body(fmt, "a", s, "b", s, 7);
				kb_mp_pack(&want.pk, fmt, "a", s, "b", s, 7);
			} else {
				b = kb_mp_body(fmt, s);
				kb_mp_pack(&want.pk, fmt, s);
			}
			assert_non_null(b);
			size_t len;
			const void *data = kb_body_data(b, &len);
			assert_int_equal(len, want.sb.size);
			assert_memory_equal(data, want.sb.data, len);
			assert_non_null(kb_body_obj(b));
			kb_body_unref(b);

			/* the same bytes through kb_body_from_sbuf */
			size_t size = want.sb.size;
			char *copy = malloc(size);
			assert_non_null(copy);
			memcpy(copy, want.sb.data, size);
			b = kb_body_from_sbuf(&want.sb);
			assert_non_null(b);
			assert_null(want.sb.data);
			assert_int_equal(want.sb.size, 0);
			assert_int_equal(want.sb.alloc, 0);
			data = kb_body_data(b, &len);
			assert_int_equal(len, size);
			assert_memory_equal(data, copy, size);
			assert_non_null(kb_body_obj(b));
			kb_body_unref(b);
			free(copy);
			/* the sbuffer is reusable */
			kb_mp_pack(&want.pk, "i", 5);
			assert_int_equal(want.sb.size, 1);
			pb_free(&want);
		}
		free(s);
	}
}

static void test_repr(void **state)
{
	char buf[64];
	kb_body *b = kb_mp_body("{s:[i, s]}", "a", 1, "x");
	const msgpack_object *o = kb_body_obj(b);
	kb_mp_repr(o, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"a\""));
	assert_non_null(strstr(buf, "1"));
	assert_non_null(strstr(buf, "\"x\""));
	/* Truncated, still terminated. */
	char tiny[4];
	assert_ptr_equal(kb_mp_repr(o, tiny, sizeof(tiny)), tiny);
	assert_true(strlen(tiny) < sizeof(tiny));
	assert_string_equal(kb_mp_repr(NULL, buf, sizeof(buf)), "(none)");
	kb_body_unref(b);
}

/* --- bodies -------------------------------------------------------------------------- */

static void test_body_lifecycle(void **state)
{
	/* {k: 7} */
	static const unsigned char one[] = { 0x81, 0xa1, 'k', 0x07 };
	size_t len = 0;

	/* new copies. */
	unsigned char src[sizeof(one)];
	memcpy(src, one, sizeof(one));
	kb_body *b = kb_body_new(src, sizeof(src));
	assert_non_null(b);
	memset(src, 0, sizeof(src));
	const void *data = kb_body_data(b, &len);
	assert_int_equal(len, sizeof(one));
	assert_memory_equal(data, one, sizeof(one));
	assert_ptr_not_equal(data, src);

	/* ref returns the same body; it lives until the last unref (ASan
	 * checks the use after the first unref and the final free). */
	assert_ptr_equal(kb_body_ref(b), b);
	assert_ptr_equal(kb_body_ref(b), b);
	const msgpack_object *o = kb_body_obj(b);
	assert_non_null(o);
	kb_body_unref(b);
	kb_body_unref(b);
	int64_t v = 0;
	assert_true(kb_mp_int(o, "k", &v));
	assert_int_equal(v, 7);
	assert_ptr_equal(kb_body_obj(b), o); /* decoded once */
	kb_body_unref(b);

	/* take adopts a malloc()ed buffer. */
	unsigned char *heap = malloc(sizeof(one));
	assert_non_null(heap);
	memcpy(heap, one, sizeof(one));
	b = kb_body_take(heap, sizeof(one));
	assert_non_null(b);
	assert_ptr_equal(kb_body_data(b, NULL), heap);
	assert_true(kb_mp_int(kb_body_obj(b), "k", &v));
	kb_body_unref(b);

	/* from_sbuf empties the sbuffer, which stays usable. */
	struct packbuf p;
	pb_init(&p);
	kb_mp_pack(&p.pk, "{s:s}", "a", "b");
	size_t packed = p.sb.size;
	b = kb_body_from_sbuf(&p.sb);
	assert_non_null(b);
	assert_int_equal(p.sb.size, 0);
	assert_null(p.sb.data);
	kb_body_data(b, &len);
	assert_int_equal(len, packed);
	assert_true(kb_mp_streq(kb_body_obj(b), "a", "b"));
	kb_mp_pack(&p.pk, "i", 1);
	assert_int_equal(p.sb.size, 1);
	pb_free(&p);
	kb_body_unref(b);

	/* nil. */
	b = kb_body_nil();
	assert_non_null(b);
	o = kb_body_obj(b);
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_NIL);
	kb_body_unref(b);

	/* NULL is harmless where it can be. */
	kb_body_unref(NULL);
	assert_null(kb_body_ref(NULL));
	assert_null(kb_body_obj(NULL));
	len = 5;
	assert_null(kb_body_data(NULL, &len));
	assert_int_equal(len, 0);
}

static void test_body_malformed(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t len;
	} bad[] = {
		{ "empty", "", 0 },
		{ "reserved byte 0xc1", "\xc1", 1 },
		{ "truncated map", "\x81\xa1k", 3 },
		{ "truncated string", "\xa5xy", 3 },
		{ "truncated uint32", "\xce\x00\x01", 3 },
		{ "trailing bytes", "\x01\x02", 2 },
		{ "trailing garbage after a map", "\x80\xc1", 2 },
		{ "two maps", "\x80\x80", 2 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* A non-NULL pointer even for zero bytes. */
		kb_body *b = kb_body_new(bad[i].bytes, bad[i].len);
		assert_non_null(b);
		if (kb_body_obj(b) != NULL)
			fail_msg("%s: decoded, want NULL", bad[i].what);
		/* The verdict is remembered. */
		assert_null(kb_body_obj(b));
		size_t len;
		kb_body_data(b, &len);
		assert_int_equal(len, bad[i].len);
		kb_body_unref(b);
	}
}

#define NTHREADS 8

struct racer {
	kb_body *b;
	pthread_barrier_t *start;
	const msgpack_object *seen;
	int64_t value;
	bool ok;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->start);
	r->seen = kb_body_obj(r->b);
	r->ok = r->seen && kb_mp_int(r->seen, "list[999].v", &r->value);
	kb_body_unref(r->b); /* each thread holds its own reference */
	return NULL;
}

/* A body whose decode takes a while, so the threads really overlap. */
static kb_body *big_body(void)
{
	struct packbuf p;
	pb_init(&p);
	msgpack_pack_map(&p.pk, 1);
	pk_str(&p.pk, "list");
	msgpack_pack_array(&p.pk, 1000);
	for (int i = 0; i < 1000; i++)
		kb_mp_pack(&p.pk, "{s:i, s:s}", "v", i, "pad",
		    "some padding text");
	kb_body *b = kb_body_from_sbuf(&p.sb);
	pb_free(&p);
	return b;
}

static void run_race(kb_body *b, struct racer *r)
{
	pthread_t t[NTHREADS];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		r[i] = (struct racer){ .b = kb_body_ref(b), .start = &start };
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
}

static void test_body_decode_shared_across_threads(void **state)
{
	for (int round = 0; round < 20; round++) {
		kb_body *b = big_body();
		assert_non_null(b);
		struct racer r[NTHREADS];
		run_race(b, r);
		for (int i = 0; i < NTHREADS; i++) {
			assert_true(r[i].ok);
			assert_int_equal(r[i].value, 999);
			/* One decode, shared by every holder. */
			assert_ptr_equal(r[i].seen, r[0].seen);
		}
		assert_ptr_equal(kb_body_obj(b), r[0].seen);
		kb_body_unref(b);
	}

	/* A malformed body is NULL for everyone. */
	for (int round = 0; round < 20; round++) {
		kb_body *good = big_body();
		size_t len;
		const void *data = kb_body_data(good, &len);
		kb_body *b = kb_body_new(data, len - 1); /* cut short */
		kb_body_unref(good);
		struct racer r[NTHREADS];
		run_race(b, r);
		for (int i = 0; i < NTHREADS; i++) {
			assert_null(r[i].seen);
			assert_false(r[i].ok);
		}
		kb_body_unref(b);
	}
}

/* --- errors ---------------------------------------------------------------------------- */

static void test_err_helpers(void **state)
{
	static const struct {
		int code;
		const char *reason;
		int http;
	} wire[] = {
		{ KB_ENOTFOUND, "NotFound", 404 },
		{ KB_EEXIST, "AlreadyExists", 409 },
		{ KB_ECONFLICT, "Conflict", 409 },
		{ KB_EINVAL, "Invalid", 422 },
		{ KB_EFORBIDDEN, "Forbidden", 403 },
		{ KB_EUNAUTHORIZED, "Unauthorized", 401 },
		{ KB_ETIMEOUT, "Timeout", 504 },
		{ KB_EUNAVAILABLE, "ServiceUnavailable", 503 },
		{ KB_ETOOMANY, "TooManyRequests", 429 },
		{ KB_EINTERNAL, "InternalError", 500 },
		{ KB_EEXPIRED, "Expired", 410 },
		{ KB_EBADREQUEST, "BadRequest", 400 },
		{ KB_ETOOLARGE, "RequestEntityTooLarge", 413 },
		{ KB_EMETHOD, "MethodNotAllowed", 405 },
		{ KB_EGONE, "Gone", 410 },
	};
	for (size_t i = 0; i < sizeof(wire) / sizeof(wire[0]); i++) {
		int c = wire[i].code;
		assert_string_equal(kb_err_reason(c), wire[i].reason);
		assert_int_equal(kb_err_http(c), wire[i].http);
		/* Every code that travels comes back from its reason. */
		assert_int_equal(kb_err_from_reason(kb_err_reason(c)), c);
		assert_non_null(kb_strerror(c));
		assert_string_not_equal(kb_strerror(c), "unknown error");
	}
	assert_string_equal(kb_strerror(KB_ENOTFOUND), "not found");
	assert_int_equal(kb_err_http(KB_OK), 200);
	assert_string_equal(kb_strerror(KB_OK), "success");

	/* Local codes travel as a reason of another code. */
	static const int local[] = { KB_ENOMEM, KB_ESYS, KB_EABI, KB_ECLOSED,
		KB_ESTATE, KB_EPROTO, KB_ENOENT };
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		int c = local[i];
		const char *reason = kb_err_reason(c);
		assert_non_null(reason);
		kb_err back = kb_err_from_reason(reason);
		assert_true(back > KB_OK && back < KB_ENOMEM);
		assert_string_equal(kb_err_reason(back), reason);
		assert_int_equal(kb_err_http(back), kb_err_http(c));
		assert_string_not_equal(kb_strerror(c), "unknown error");
	}
	assert_string_equal(kb_err_reason(KB_ENOMEM), "InternalError");
	assert_string_equal(kb_err_reason(KB_ECLOSED), "ServiceUnavailable");
	assert_string_equal(kb_err_reason(KB_ENOENT), "NotFound");

	/* Unknown codes and reasons. */
	assert_string_equal(kb_strerror(999), "unknown error");
	assert_string_equal(kb_strerror(-1), "unknown error");
	assert_string_equal(kb_err_reason(999), "InternalError");
	assert_int_equal(kb_err_http(999), 500);
	assert_int_equal(kb_err_from_reason("NoSuchReason"), KB_EINTERNAL);
	assert_int_equal(kb_err_from_reason(""), KB_EINTERNAL);
	assert_int_equal(kb_err_from_reason(NULL), KB_EINTERNAL);
	/* Reasons compare exactly. */
	assert_int_equal(kb_err_from_reason("notfound"), KB_EINTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_get_paths),
		cmocka_unit_test(test_get_missing_and_wrong_types),
		cmocka_unit_test(test_get_long_key),
		cmocka_unit_test(test_typed_reads),
		cmocka_unit_test(test_pack_scalars),
		cmocka_unit_test(test_pack_containers),
		cmocka_unit_test(test_pack_bad_formats),
		cmocka_unit_test(test_pack_body_and_cstr),
		cmocka_unit_test(test_body_sizes),
		cmocka_unit_test(test_repr),
		cmocka_unit_test(test_body_lifecycle),
		cmocka_unit_test(test_body_malformed),
		cmocka_unit_test(test_body_decode_shared_across_threads),
		cmocka_unit_test(test_err_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

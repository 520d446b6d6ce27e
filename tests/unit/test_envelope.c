/* tests/unit/test_envelope.c — the wire codec (core/envelope.h): round
 * trips of every type, and every way a hostile frame can be wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/err.h>

#include "envelope.h"

/* --- helpers ------------------------------------------------------------- */

static const char *const groups3[] = { "system:masters", "kubus:plugins",
	"g3" };

/* A body: {"a": [1, -2, "x", nil, true], "m": {"k": 1.5}} */
static void make_body(msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_array(&pk, 5);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, -2);
	msgpack_pack_str_with_body(&pk, "x", 1);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_str_with_body(&pk, "m", 1);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "k", 1);
	msgpack_pack_double(&pk, 1.5);
}

/* A full frame of type t with every field set; sb is initialised here. */
static void make_frame(msgpack_sbuffer *sb, int t, uint64_t id)
{
	msgpack_sbuffer body;
	make_body(&body);
	msgpack_sbuffer_init(sb);
	kb_env_encode(sb, t, id, "node-1#7", "user:alice", groups3, 3,
	    "kubelet/node-1", "create", 1234, body.data, body.size,
	    t == KB_ENV_ERR ? KB_ECONFLICT : 0,
	    t == KB_ENV_ERR ? "the object has been modified" : NULL);
	msgpack_sbuffer_destroy(&body);
}

static uint32_t prefix_len(const msgpack_sbuffer *sb)
{
	const uint8_t *p = (const uint8_t *)sb->data;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Expect decode of buf to fail, with a reason that contains `want`. */
#define expect_bad(buf, len, want)                                             \
	do {                                                                   \
		struct kb_env e_;                                              \
		const char *why_ = NULL;                                       \
		int rc_ =                                                      \
		    kb_env_decode((const uint8_t *)(buf), (len), &e_, &why_);  \
		if (rc_ != KB_EPROTO)                                          \
			fail_msg("%s:%d: decode gave %d, want KB_EPROTO (%s)", \
			    __FILE__, __LINE__, rc_, want);                    \
		assert_non_null(why_);                                         \
		if (strstr(why_, want) == NULL)                                \
			fail_msg("%s:%d: reason \"%s\" lacks \"%s\"",          \
			    __FILE__, __LINE__, why_, want);                   \
	} while (0)

/* A hand-built envelope: a map of n entries starting with v, t and id. */
struct fb {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void fb_start(struct fb *f, uint32_t nextra, const char *type)
{
	msgpack_sbuffer_init(&f->sb);
	msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&f->pk, 3 + nextra);
	msgpack_pack_str_with_body(&f->pk, "v", 1);
	msgpack_pack_int(&f->pk, KB_PROTO_VERSION);
	msgpack_pack_str_with_body(&f->pk, "t", 1);
	msgpack_pack_str_with_body(&f->pk, type, strlen(type));
	msgpack_pack_str_with_body(&f->pk, "id", 2);
	msgpack_pack_uint64(&f->pk, 42);
}

static void fb_key(struct fb *f, const char *k)
{
	msgpack_pack_str_with_body(&f->pk, k, strlen(k));
}

static void fb_raw(struct fb *f, const void *b, size_t n)
{
	msgpack_sbuffer_write(&f->sb, b, n);
}

static void fb_strn(struct fb *f, size_t n, char c)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	msgpack_pack_str_with_body(&f->pk, s, n);
	free(s);
}

static int fb_decode(struct fb *f, struct kb_env *e, const char **why)
{
	return kb_env_decode((const uint8_t *)f->sb.data, f->sb.size, e, why);
}

/* --- round trips ------------------------------------------------------------ */

static void test_roundtrip_every_type(void **state)
{
	msgpack_sbuffer body;
	make_body(&body);
	for (int t = KB_ENV_REQ; t <= KB_ENV_PONG; t++) {
		msgpack_sbuffer sb;
		uint64_t id = 0x7000000000000000ull + (uint64_t)t;
		make_frame(&sb, t, id);
		assert_true(sb.size > 4);
		assert_int_equal(prefix_len(&sb), sb.size - 4);
		struct kb_env e;
		const char *why = "unset";
		int rc = kb_env_decode((const uint8_t *)sb.data + 4,
		    sb.size - 4, &e, &why);
		if (rc)
			fail_msg("type %s: %s", kb_env_type_name(t), why);
		assert_null(why);
		assert_int_equal(e.v, KB_PROTO_VERSION);
		assert_int_equal(e.t, t);
		assert_true(e.id == id);
		assert_int_equal(e.dl, 1234);
		assert_string_equal(e.src, "node-1#7");
		assert_string_equal(e.p, "user:alice");
		assert_string_equal(e.dst, "kubelet/node-1");
		assert_string_equal(e.op, "create");
		assert_int_equal(e.ngroups, 3);
		for (size_t i = 0; i < 3; i++)
			assert_string_equal(e.groups[i], groups3[i]);
		assert_non_null(e.body);
		assert_int_equal(e.body_len, body.size);
		assert_memory_equal(e.body, body.data, body.size);
		/* The body points into the frame: nothing was copied. */
		assert_true(e.body > (const uint8_t *)sb.data &&
		    e.body + e.body_len <= (const uint8_t *)sb.data + sb.size);
		assert_true(
		    (e.seen & (KB_ENV_HAS_V | KB_ENV_HAS_T | KB_ENV_HAS_ID)) ==
		    (KB_ENV_HAS_V | KB_ENV_HAS_T | KB_ENV_HAS_ID));
		if (t == KB_ENV_ERR) {
			assert_int_equal(e.ecode, KB_ECONFLICT);
			assert_string_equal(e.emsg,
			    "the object has been modified");
		} else {
			assert_int_equal(e.ecode, 0);
			assert_string_equal(e.emsg, "");
		}
		assert_string_not_equal(kb_env_type_name(t), "?");
		msgpack_sbuffer_destroy(&sb);
	}
	msgpack_sbuffer_destroy(&body);
	assert_string_equal(kb_env_type_name(0), "?");
	assert_string_equal(kb_env_type_name(KB_ENV_PONG + 1), "?");
}

/* Ids are uint64 on both sides: the top of the range survives. */
static void test_roundtrip_id_range(void **state)
{
	const uint64_t ids[] = { 0, 1, 127, 128, 65535, 1ull << 32,
		(uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		kb_env_encode(&sb, KB_ENV_REQ, ids[i], NULL, NULL, NULL, 0, "s",
		    "op", 0, NULL, 0, 0, NULL);
		struct kb_env e;
		const char *why;
		int rc = kb_env_decode((const uint8_t *)sb.data + 4,
		    sb.size - 4, &e, &why);
		if (rc)
			fail_msg("id %llu: %s", (unsigned long long)ids[i],
			    why);
		assert_true(e.id == ids[i]);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* Absent optional fields decode as empty; error codes survive by reason. */
static void test_roundtrip_minimal_and_errors(void **state)
{
	msgpack_sbuffer sb;
	struct kb_env e;
	const char *why;
	msgpack_sbuffer_init(&sb);
	kb_env_encode(&sb, KB_ENV_PUB, 0, NULL, NULL, NULL, 0, "events/pods",
	    NULL, 0, NULL, 0, 0, NULL);
	assert_int_equal(kb_env_decode((const uint8_t *)sb.data + 4,
			     sb.size - 4, &e, &why),
	    0);
	assert_int_equal(e.t, KB_ENV_PUB);
	assert_string_equal(e.src, "");
	assert_string_equal(e.p, "");
	assert_string_equal(e.op, "");
	assert_string_equal(e.dst, "events/pods");
	assert_int_equal(e.ngroups, 0);
	assert_null(e.body);
	assert_int_equal(e.body_len, 0);
	assert_int_equal(e.dl, 0);
	msgpack_sbuffer_destroy(&sb);

	/* Every code that travels comes back as itself. */
	for (int code = KB_ENOTFOUND; code <= KB_EGONE; code++) {
		msgpack_sbuffer_init(&sb);
		kb_env_encode(&sb, KB_ENV_ERR, 9, NULL, NULL, NULL, 0, NULL,
		    NULL, 0, NULL, 0, code, "m");
		assert_int_equal(kb_env_decode((const uint8_t *)sb.data + 4,
				     sb.size - 4, &e, &why),
		    0);
		assert_int_equal(e.ecode, code);
		assert_string_equal(e.emsg, "m");
		msgpack_sbuffer_destroy(&sb);
	}
	/* A local code travels as its reason. */
	msgpack_sbuffer_init(&sb);
	kb_env_encode(&sb, KB_ENV_ERR, 9, NULL, NULL, NULL, 0, NULL, NULL, 0,
	    NULL, 0, KB_ENOMEM, NULL);
	assert_int_equal(kb_env_decode((const uint8_t *)sb.data + 4,
			     sb.size - 4, &e, &why),
	    0);
	assert_int_equal(e.ecode, KB_EINTERNAL);
	msgpack_sbuffer_destroy(&sb);

	/* An err without `e` still carries an error code. */
	struct fb f;
	fb_start(&f, 0, "err");
	assert_int_equal(fb_decode(&f, &e, &why), 0);
	assert_int_equal(e.ecode, KB_EINTERNAL);
	msgpack_sbuffer_destroy(&f.sb);
	/* An unknown reason is an internal error, not a crash. */
	fb_start(&f, 1, "err");
	fb_key(&f, "e");
	msgpack_pack_map(&f.pk, 2);
	fb_key(&f, "reason");
	fb_key(&f, "NoSuchReason");
	fb_key(&f, "message");
	fb_key(&f, "hi");
	assert_int_equal(fb_decode(&f, &e, &why), 0);
	assert_int_equal(e.ecode, KB_EINTERNAL);
	assert_string_equal(e.emsg, "hi");
	msgpack_sbuffer_destroy(&f.sb);
}

/* --- hostile frames -------------------------------------------------------------- */

static void test_every_truncation_rejected(void **state)
{
	for (int t = KB_ENV_REQ; t <= KB_ENV_PONG; t++) {
		msgpack_sbuffer sb;
		make_frame(&sb, t, 77);
		const uint8_t *env = (const uint8_t *)sb.data + 4;
		size_t full = sb.size - 4;
		for (size_t len = 0; len < full; len++) {
			/* A copy of exactly len bytes: ASan sees any read past it. */
			uint8_t *cut = malloc(len ? len : 1);
			assert_non_null(cut);
			memcpy(cut, env, len);
			struct kb_env e;
			const char *why = NULL;
			if (kb_env_decode(cut, len, &e, &why) != KB_EPROTO)
				fail_msg("type %s: a frame cut to %zu of %zu bytes was accepted",
				    kb_env_type_name(t), len, full);
			assert_non_null(why);
			assert_int_equal(kb_mp_skip(cut, len), 0);
			free(cut);
		}
		assert_int_equal(kb_mp_skip(env, full), full);
		msgpack_sbuffer_destroy(&sb);
	}
}

static void test_trailing_bytes_rejected(void **state)
{
	msgpack_sbuffer sb;
	make_frame(&sb, KB_ENV_REQ, 1);
	size_t n = sb.size - 4;
	uint8_t *buf = malloc(n + 8);
	assert_non_null(buf);
	memcpy(buf, sb.data + 4, n);
	const uint8_t tails[][2] = { { 0xc0, 0 }, { 0x00, 0 }, { 0x80, 0 },
		{ 0xc1, 0 } };
	for (size_t i = 0; i < 4; i++) {
		buf[n] = tails[i][0];
		expect_bad(buf, n + 1, "trailing bytes");
	}
	/* A second whole envelope glued on is trailing bytes too. */
	memcpy(buf + n, buf, 8);
	expect_bad(buf, n + 8, "trailing bytes");
	/* kb_mp_skip reads exactly one value and stops. */
	assert_int_equal(kb_mp_skip(buf, n + 8), n);
	free(buf);
	msgpack_sbuffer_destroy(&sb);
}

static void test_not_a_map(void **state)
{
	expect_bad("", 0, "not a msgpack map");
	expect_bad("\x93\x01\x02\x03", 4, "not a msgpack map");
	expect_bad("\xa1v", 2, "not a msgpack map");
	expect_bad("\xc1", 1, "not a msgpack map");
	/* map keys must be strings */
	expect_bad("\x81\x01\x01", 3, "map key is not a string");
	expect_bad("\x81\xc4\x01v\x01", 5, "map key is not a string");
	/* v and t are required; id on requests, replies and errors */
	expect_bad("\x80", 1, "`v` or `t` missing");
	expect_bad("\x81\xa1v\x01", 4, "`v` or `t` missing");
	expect_bad("\x81\xa1t\xa3req", 7, "`v` or `t` missing");
	expect_bad("\x82\xa1v\x01\xa1t\xa3req", 10, "`id` missing");
	expect_bad("\x82\xa1v\x01\xa1t\xa3rep", 10, "`id` missing");
	expect_bad("\x82\xa1v\x01\xa1t\xa3"
		   "err",
	    10, "`id` missing");
	expect_bad("\x82\xa1v\x01\xa1t\xa5hello", 12, "`id` missing");
	/* … but not on publications and the control messages */
	struct kb_env e;
	const char *why;
	const char *const noid[] = { "pub", "sub", "unsub", "reg", "ready" };
	for (size_t i = 0; i < 5; i++) {
		char buf[32];
		size_t n = strlen(noid[i]);
		memcpy(buf, "\x82\xa1v\x01\xa1t", 6);
		buf[6] = (char)(0xa0 | n);
		memcpy(buf + 7, noid[i], n);
		assert_int_equal(kb_env_decode((const uint8_t *)buf, 7 + n, &e,
				     &why),
		    0);
		assert_int_equal(e.seen & KB_ENV_HAS_ID, 0);
	}
}

/* Each key with a value of the wrong type, too long, or out of range. */
static void test_wrong_types_rejected(void **state)
{
	struct fb f;
	struct kb_env e;
	const char *why;
	static const struct {
		const char *key;
		const char *want;
		const char *raw;
		size_t rawlen;
	} cases[] = {
		{ "v", "`v` is not an integer",
		    "\xa1"
		    "1",
		    2 },
		{ "v", "`v` is not an integer", "\xff", 1 }, /* -1 */
		{ "v", "`v` is not an integer", "\xcb\0\0\0\0\0\0\0\0",
		    9 }, /* 0.0 */
		{ "v", "`v` is not an integer", "\xc3", 1 },
		{ "t", "`t` is not a known message type",
		    "\xa5"
		    "bogus",
		    6 },
		{ "t", "`t` is not a known message type", "\x01", 1 },
		{ "t", "`t` is not a known message type", "\xa0", 1 },
		{ "t", "`t` is not a known message type", "\xa4reqx", 5 },
		{ "id", "`id` is not an unsigned integer", "\xd0\xfe",
		    2 }, /* -2 */
		{ "id", "`id` is not an unsigned integer", "\xc0", 1 },
		{ "id", "`id` is not an unsigned integer",
		    "\xa2"
		    "42",
		    3 },
		{ "dl", "`dl` is not an integer",
		    "\xa3"
		    "1ms",
		    4 },
		{ "dl", "`dl` is not an integer", "\xe0", 1 }, /* -32 */
		{ "src", "`src` is not a string", "\x01", 1 },
		{ "src", "`src` is not a string", "\xc4\x01x", 3 }, /* bin */
		{ "src", "`src` is not a string", "\xa3x\0y", 4 },  /* NUL */
		{ "p", "`p` is not a string", "\x90", 1 },
		{ "p", "`p` is not a string", "\xc0", 1 },
		{ "dst", "`dst` is not a string", "\x80", 1 },
		{ "op", "`op` is not a string", "\xc2", 1 },
		{ "g", "`g` is not an array", "\xa1g", 2 },
		{ "g", "`g` is not an array", "\x91\x01", 2 },
		{ "g", "`g` is not an array",
		    "\x92\xa1"
		    "a\x90",
		    4 },
		{ "g", "`g` is not an array", "\x80", 1 },
		{ "b", "`b` is not one well-formed msgpack value", "\xc1", 1 },
		{ "b", "`b` is not one well-formed msgpack value", "\x92\x01",
		    2 },
		{ "e", "`e` is not a map",
		    "\xa3"
		    "bad",
		    4 },
		{ "e", "`e` is not a map", "\x81\x01\x01", 3 },
		{ "e", "`e` is not a map", "\x81\xa6reason\x01", 9 },
		{ "e", "`e` is not a map", "\x81\xa7message\x90", 10 },
		{ "e", "`e` is not a map",
		    "\x81\xa4"
		    "code\xc1",
		    7 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fb_start(&f, 1, "req");
		fb_key(&f, cases[i].key);
		fb_raw(&f, cases[i].raw, cases[i].rawlen);
		int rc = fb_decode(&f, &e, &why);
		if (rc != KB_EPROTO)
			fail_msg("case %zu (%s): accepted", i, cases[i].key);
		if (strstr(why, cases[i].want) == NULL)
			fail_msg("case %zu (%s): reason \"%s\", want \"%s\"", i,
			    cases[i].key, why, cases[i].want);
		/* The id came before the fault: the peer can be told. */
		assert_true(e.seen & KB_ENV_HAS_ID);
		assert_int_equal(e.id, 42);
		msgpack_sbuffer_destroy(&f.sb);
	}

	/* Strings one byte over each field's room, and exactly at it. */
	static const struct {
		const char *key;
		size_t room;
	} lens[] = { { "src", 128 }, { "p", 128 }, { "dst", 256 },
		{ "op", 64 } };
	for (size_t i = 0; i < 4; i++) {
		fb_start(&f, 1, "req");
		fb_key(&f, lens[i].key);
		fb_strn(&f, lens[i].room, 'x');
		assert_int_equal(fb_decode(&f, &e, &why), KB_EPROTO);
		assert_non_null(strstr(why, lens[i].key));
		msgpack_sbuffer_destroy(&f.sb);
		fb_start(&f, 1, "req");
		fb_key(&f, lens[i].key);
		fb_strn(&f, lens[i].room - 1, 'x');
		assert_int_equal(fb_decode(&f, &e, &why), 0);
		msgpack_sbuffer_destroy(&f.sb);
	}
	/* 17 groups, and a group name of 96 bytes. */
	fb_start(&f, 1, "req");
	fb_key(&f, "g");
	msgpack_pack_array(&f.pk, KB_ENV_MAX_GROUPS + 1);
	for (int i = 0; i < KB_ENV_MAX_GROUPS + 1; i++)
		fb_key(&f, "grp");
	expect_bad(f.sb.data, f.sb.size, "`g`");
	msgpack_sbuffer_destroy(&f.sb);
	fb_start(&f, 1, "req");
	fb_key(&f, "g");
	msgpack_pack_array(&f.pk, 1);
	fb_strn(&f, 96, 'g');
	expect_bad(f.sb.data, f.sb.size, "`g`");
	msgpack_sbuffer_destroy(&f.sb);
	fb_start(&f, 1, "req");
	fb_key(&f, "g");
	msgpack_pack_array(&f.pk, KB_ENV_MAX_GROUPS);
	for (int i = 0; i < KB_ENV_MAX_GROUPS; i++)
		fb_strn(&f, 95, (char)('a' + i));
	assert_int_equal(fb_decode(&f, &e, &why), 0);
	assert_int_equal(e.ngroups, KB_ENV_MAX_GROUPS);
	assert_int_equal(strlen(e.groups[15]), 95);
	assert_int_equal(e.groups[15][0], 'p');
	msgpack_sbuffer_destroy(&f.sb);
	/* A reason longer than any real one is refused, not truncated. */
	fb_start(&f, 1, "err");
	fb_key(&f, "e");
	msgpack_pack_map(&f.pk, 1);
	fb_key(&f, "reason");
	fb_strn(&f, 200, 'R');
	expect_bad(f.sb.data, f.sb.size, "`e`");
	msgpack_sbuffer_destroy(&f.sb);
	/* A message that does not fit emsg. */
	fb_start(&f, 1, "err");
	fb_key(&f, "e");
	msgpack_pack_map(&f.pk, 1);
	fb_key(&f, "message");
	fb_strn(&f, 1024, 'm');
	expect_bad(f.sb.data, f.sb.size, "`e`");
	msgpack_sbuffer_destroy(&f.sb);
}

/* Deep nesting anywhere is refused without deep recursion. */
static void test_nesting_bomb(void **state)
{
	const size_t depth = 1 << 20;
	for (int where = 0; where < 3; where++) {
		struct fb f;
		fb_start(&f, 1, "req");
		fb_key(&f, where == 0 ? "b" : where == 1 ? "zz" : "e");
		if (where == 2) { /* inside `e`, under a key it skips */
			msgpack_pack_map(&f.pk, 1);
			fb_key(&f, "code");
		}
		uint8_t *bomb = malloc(depth + 1);
		assert_non_null(bomb);
		memset(bomb, 0x91, depth); /* [[[[…]]]] */
		bomb[depth] = 0x01;
		fb_raw(&f, bomb, depth + 1);
		struct kb_env e;
		const char *why;
		assert_int_equal(fb_decode(&f, &e, &why), KB_EPROTO);
		assert_int_equal(kb_mp_skip(bomb, depth + 1), 0);
		/* maps nest the same way */
		memset(bomb, 0x81, depth);
		for (size_t i = 1; i < depth; i += 2)
			bomb[i] = 0xa0; /* "" key, then the next map */
		assert_int_equal(kb_mp_skip(bomb, depth + 1), 0);
		free(bomb);
		msgpack_sbuffer_destroy(&f.sb);
	}
	/* Moderate nesting is a normal body. */
	uint8_t ok[41];
	memset(ok, 0x91, 40);
	ok[40] = 0xc0;
	assert_int_equal(kb_mp_skip(ok, sizeof(ok)), sizeof(ok));
	struct fb f;
	fb_start(&f, 1, "req");
	fb_key(&f, "b");
	fb_raw(&f, ok, sizeof(ok));
	struct kb_env e;
	const char *why;
	assert_int_equal(fb_decode(&f, &e, &why), 0);
	assert_int_equal(e.body_len, sizeof(ok));
	msgpack_sbuffer_destroy(&f.sb);
}

/* Lengths and counts far beyond the buffer fail fast. */
static void test_huge_lengths(void **state)
{
	static const struct {
		const char *key;
		const char *raw;
		size_t n;
	} cases[] = {
		{ "dst", "\xdb\xff\xff\xff\xff", 5 }, /* str32 4 GiB */
		{ "dst",
		    "\xda\xff\xff"
		    "abc",
		    6 },                                    /* str16 64 KiB */
		{ "b", "\xc6\xff\xff\xff\xff", 5 },         /* bin32 */
		{ "b", "\xdd\xff\xff\xff\xff\x01", 6 },     /* array32 */
		{ "b", "\xdf\xff\xff\xff\xff\x01\x01", 7 }, /* map32 */
		{ "b", "\xc9\xff\xff\xff\xff\x01", 6 },     /* ext32 */
		{ "b", "\xc9\xff\xff\xff\xff", 5 },
		{ "zz", "\xdb\x7f\xff\xff\xff", 5 },
		{ "zz", "\xdd\x00\x01\x00\x00", 5 },
		{ "g", "\xdd\xff\xff\xff\xff", 5 },
		{ "e", "\xdf\xff\xff\xff\xff", 5 },
		{ "src", "\xd9\xff", 2 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fb f;
		fb_start(&f, 1, "req");
		fb_key(&f, cases[i].key);
		fb_raw(&f, cases[i].raw, cases[i].n);
		struct kb_env e;
		const char *why;
		if (fb_decode(&f, &e, &why) != KB_EPROTO)
			fail_msg("case %zu (%s) accepted", i, cases[i].key);
		msgpack_sbuffer_destroy(&f.sb);
		assert_int_equal(kb_mp_skip((const uint8_t *)cases[i].raw,
				     cases[i].n),
		    0);
	}
	/* A top-level map that claims 4 billion entries. */
	expect_bad("\xdf\xff\xff\xff\xff\xa1v\x01", 8, "");
}

/* A newer minor version may add keys: they are skipped, whatever they hold. */
static void test_unknown_keys_ignored(void **state)
{
	struct fb f;
	fb_start(&f, 6, "req");
	fb_key(&f, "zz");
	msgpack_pack_map(&f.pk, 2);
	fb_key(&f, "deep");
	msgpack_pack_array(&f.pk, 3);
	msgpack_pack_int(&f.pk, -100000);
	msgpack_pack_bin(&f.pk, 3);
	msgpack_pack_bin_body(&f.pk, "\0\1\2", 3);
	msgpack_pack_ext(&f.pk, 2, 7);
	msgpack_pack_ext_body(&f.pk, "ab", 2);
	fb_key(&f, "f");
	msgpack_pack_float(&f.pk, 1.5f);
	fb_key(&f, "dst");
	fb_key(&f, "svc");
	fb_key(&f, "");
	msgpack_pack_nil(&f.pk);
	fb_key(&f, "vv"); /* close to a real key */
	fb_key(&f, "x");
	fb_key(&f, "op");
	fb_key(&f, "get");
	/* e's unknown keys (code, details) are skipped too */
	fb_key(&f, "e");
	msgpack_pack_map(&f.pk, 3);
	fb_key(&f, "code");
	msgpack_pack_int(&f.pk, 404);
	fb_key(&f, "details");
	msgpack_pack_map(&f.pk, 1);
	fb_key(&f, "name");
	fb_key(&f, "x");
	fb_key(&f, "reason");
	fb_key(&f, "NotFound");
	struct kb_env e;
	const char *why;
	int rc = fb_decode(&f, &e, &why);
	if (rc)
		fail_msg("rejected: %s", why);
	assert_string_equal(e.dst, "svc");
	assert_string_equal(e.op, "get");
	assert_int_equal(e.id, 42);
	assert_int_equal(e.ecode, KB_ENOTFOUND);
	msgpack_sbuffer_destroy(&f.sb);
	/* A peer of another version still decodes; the connection decides. */
	expect_bad("\x82\xa1v\x02\xa1t\xa3req", 10, "`id` missing");
	assert_int_equal(kb_env_decode((const uint8_t
					       *)"\x82\xa1v\x02\xa1t\xa3pub",
			     10, &e, &why),
	    0);
	assert_int_equal(e.v, 2);
}

static void test_mp_skip(void **state)
{
	static const struct {
		const char *b;
		size_t n, want;
	} cases[] = {
		{ "", 0, 0 },
		{ "\xc1", 1, 0 }, /* never used */
		{ "\x01", 1, 1 },
		{ "\xff", 1, 1 },
		{ "\xc0\xc0", 2, 1 }, /* one value only */
		{ "\xcc", 1, 0 },     /* uint8 missing its byte */
		{ "\xcc\x05", 2, 2 },
		{ "\xcf\0\0\0\0\0\0\0", 8, 0 },
		{ "\xcf\0\0\0\0\0\0\0\1", 9, 9 },
		{ "\xca\0\0\0", 4, 0 },
		{ "\xa3"
		  "ab",
		    3, 0 }, /* fixstr cut */
		{ "\xa3"
		  "abc",
		    4, 4 },
		{ "\xd9", 1, 0 },
		{ "\xd9\x02"
		  "a",
		    3, 0 },
		{ "\xda\x00", 2, 0 },
		{ "\xdb\x00\x00\x00", 4, 0 },
		{ "\xc4\x01", 2, 0 }, /* bin8 cut */
		{ "\xc4\x01x", 3, 3 },
		{ "\xd4\x01", 2, 0 }, /* fixext1: type, then 1 byte */
		{ "\xd4\x01\x02", 3, 3 },
		{ "\xd8\x01", 2, 0 },
		{ "\xc7\x01\x05", 3, 0 }, /* ext8: len, type, data */
		{ "\xc7\x01\x05x", 4, 4 },
		{ "\x81\x01", 2, 0 }, /* map with a key, no value */
		{ "\x81\x01\x02", 3, 3 },
		{ "\x92\x01", 2, 0 },
		{ "\x92\x01\xc1", 3, 0 }, /* bad item inside */
		{ "\x91\x91\x91", 3, 0 },
		{ "\xdc\x00\x02\x01\x02", 5, 5 },
		{ "\xdc\x00\x03\x01\x02", 5, 0 },
		{ "\xde\x00\x01\x01", 4, 0 },
		{ "\xde\x00\x01\x01\x01", 5, 5 },
		{ "\x80", 1, 1 },
		{ "\x90", 1, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *copy = malloc(cases[i].n ? cases[i].n : 1);
		assert_non_null(copy);
		memcpy(copy, cases[i].b, cases[i].n);
		size_t got = kb_mp_skip(copy, cases[i].n);
		if (got != cases[i].want)
			fail_msg("case %zu: kb_mp_skip gave %zu, want %zu", i,
			    got, cases[i].want);
		free(copy);
	}
	/* Whatever msgpack-c packs, kb_mp_skip measures exactly. */
	msgpack_sbuffer sb;
	make_body(&sb);
	assert_int_equal(kb_mp_skip((const uint8_t *)sb.data, sb.size),
	    sb.size);
	msgpack_sbuffer_destroy(&sb);
}

/* Every single-byte change of a valid frame: decoded or refused, never a
 * crash, and what decodes is within its bounds. */
static void test_byte_flips(void **state)
{
	msgpack_sbuffer sb;
	make_frame(&sb, KB_ENV_ERR, 5);
	size_t n = sb.size - 4;
	uint8_t *buf = malloc(n);
	assert_non_null(buf);
	static const uint8_t vals[] = { 0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
		0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc6, 0xc9, 0xcf, 0xd3, 0xd8,
		0xdb, 0xdd, 0xdf, 0xff };
	int ok = 0, bad = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t v = 0; v < sizeof(vals); v++) {
			memcpy(buf, sb.data + 4, n);
			buf[i] = vals[v];
			struct kb_env e;
			const char *why;
			if (kb_env_decode(buf, n, &e, &why) == 0) {
				ok++;
				assert_true(e.ngroups <= KB_ENV_MAX_GROUPS);
				assert_true(e.body == NULL ||
				    (e.body >= buf &&
					e.body + e.body_len <= buf + n));
				assert_true(strlen(e.src) < sizeof(e.src));
				assert_true(strlen(e.emsg) < sizeof(e.emsg));
			} else {
				bad++;
				assert_non_null(why);
			}
		}
	}
	assert_true(ok > 0 && bad > 0);
	free(buf);
	msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_type),
		cmocka_unit_test(test_roundtrip_id_range),
		cmocka_unit_test(test_roundtrip_minimal_and_errors),
		cmocka_unit_test(test_every_truncation_rejected),
		cmocka_unit_test(test_trailing_bytes_rejected),
		cmocka_unit_test(test_not_a_map),
		cmocka_unit_test(test_wrong_types_rejected),
		cmocka_unit_test(test_nesting_bomb),
		cmocka_unit_test(test_huge_lengths),
		cmocka_unit_test(test_unknown_keys_ignored),
		cmocka_unit_test(test_mp_skip),
		cmocka_unit_test(test_byte_flips),
	};
	return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}

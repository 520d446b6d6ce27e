/* tests/fuzz/fuzz_api_codec.c — libFuzzer target for the API server's body
 * decoders (plugins/apiserver/codec.c, yaml.c, proto.c) and msgpack.
 *
 * The first byte picks what the rest is: a JSON, YAML, apply-patch YAML,
 * merge-patch or protobuf body (protobuf also with the "k8s\0" prefix
 * added, so the fuzzer spends its time inside the envelope), msgpack for
 * api_mp_decode, or a body with a Content-Type nobody accepts.
 *
 * Whatever comes, a decoder must answer with an object/array or a clean
 * 4xx Status; what it accepts must survive json_t -> msgpack -> json_t and
 * json_t -> JSON text -> json_t unchanged, or we abort. msgpack's JSON
 * text written directly (api_mp_json) must be what the decoded object's
 * is.
 * Seeds: tests/fuzz/api_codec/ (the first byte of each is its mode).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec.h"
#include "fuzz.h"

static const char *const content_types[] = {
	"application/json",
	"application/yaml",
	"application/apply-patch+yaml",
	"application/merge-patch+json",
	"application/vnd.kubernetes.protobuf",
	"application/vnd.kubernetes.protobuf", /* with "k8s\0" added */
	NULL,                                  /* msgpack */
	"text/html",
};
#define NMODES (sizeof content_types / sizeof content_types[0])

static void check_mp_roundtrip(const json_t *j)
{
	char *mp;
	size_t len;
	CHECK(api_mp_encode(j, &mp, &len) == 0);
	json_t *back = api_mp_decode(mp, len);
	CHECK(back != NULL);
	CHECK(json_equal((json_t *)j, back));
	json_decref(back);
	free(mp);
}

static void check_text_roundtrip(const json_t *j)
{
	struct api_error e = { 0 };
	size_t len;
	char *text = api_json_text(j, &len);
	CHECK(text != NULL && len == strlen(text));
	json_t *back = api_parse_body("application/json", text, len, &e);
	CHECK(back != NULL);
	CHECK(json_equal((json_t *)j, back));
	json_decref(back);
	free(text);
}

static void check_failure(struct api_error *e)
{
	CHECK(e->code == 400 || e->code == 415);
	CHECK(e->reason != NULL && e->message[0] != '\0');
	/* the Status must be buildable (valid UTF-8 everywhere) */
	json_t *s = api_status(e);
	CHECK(s != NULL);
	CHECK(json_object_get(s, "message") != NULL);
	json_decref(s);
	api_err_clear(e);
}

static void fuzz_body(size_t mode, const uint8_t *in, size_t size)
{
	struct api_error e = { 0 };
	json_t *j = api_parse_body(content_types[mode], in, size, &e);
	if (j == NULL) {
		check_failure(&e);
		return;
	}
	CHECK(e.code == 0);
	CHECK(json_is_object(j) || json_is_array(j));
	check_mp_roundtrip(j);
	check_text_roundtrip(j);
	json_decref(j);
}

static bool has_real(const json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_real(j))
		return true;
	json_object_foreach((json_t *)j, k, v)
		if (has_real(v))
			return true;
	json_array_foreach(j, i, v)
		if (has_real(v))
			return true;
	return false;
}

/* 1 when the value at c holds a real somewhere, 0 when not, -1 when it
 * is cut short: what api_mp_json cannot write, even a real that the
 * decoded object lost to a repeated key (which has_real cannot see). */
static int mp_has_real(struct api_mpc *c, int depth)
{
	struct api_mval v;
	if (depth > 128 || !api_mpc_read(c, &v))
		return -1;
	if (v.kind == API_MV_REAL)
		return 1;
	uint64_t n = v.kind == API_MV_MAP ? 2 * v.n :
	    v.kind == API_MV_ARR	      ? v.n :
					0;
	for (uint64_t i = 0; i < n; i++) {
		int r = mp_has_real(c, depth + 1);
		if (r != 0)
			return r;
	}
	return 0;
}

/* A map of o (or one below it) repeats a key: its text names it twice
 * where the decoded object's has it once. */
static bool repeats_key(const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (repeats_key(&o->via.array.ptr[i]))
				return true;
		return false;
	}
	if (o->type != MSGPACK_OBJECT_MAP)
		return false;
	const msgpack_object_kv *kv = o->via.map.ptr;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		if (repeats_key(&kv[i].val))
			return true;
		for (uint32_t k = 0; k < i; k++)
			if (kv[k].key.via.str.size == kv[i].key.via.str.size &&
			    (kv[i].key.via.str.size == 0 || /* ptr NULL then */
				!memcmp(kv[k].key.via.str.ptr,
				    kv[i].key.via.str.ptr, kv[i].key.via.str.size)))
				return true;
	}
	return false;
}

/* api_mp_json against api_json_text(api_mp_decode()): text for the
 * same objects (but those holding reals), the same object when parsed
 * back, and the same bytes where no map repeats a key (u: msgpack-c's
 * tree of the input, or NULL). */
static void check_mp_json(const uint8_t *in, size_t size, const json_t *j,
    const msgpack_object *u)
{
	size_t len = 0;
	char *text = api_mp_json(in, size, &len);
	if (j == NULL || has_real(j)) {
		CHECK(text == NULL);
		return;
	}
	struct api_mpc c = { in, in + size };
	if (text == NULL && mp_has_real(&c, 0) == 1)
		return; /* a real under a key that repeats: no text, as told */
	CHECK(text != NULL && len == strlen(text));
	/* any value: api_parse_body takes objects and arrays only */
	json_t *back = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	CHECK(back != NULL && json_equal((json_t *)j, back));
	json_decref(back);
	if (u && !repeats_key(u)) {
		size_t wl;
		char *want = api_json_text(j, &wl);
		CHECK(want != NULL && wl == len && !memcmp(want, text, len));
		free(want);
	}
	free(text);
}

/* msgpack: our decoder against msgpack-c's. Only for input ours accepts:
 * msgpack-c allocates room for a container's declared size up front (15
 * bytes can ask for gigabytes), which would only fuzz msgpack-c. */
static void fuzz_mp(const uint8_t *in, size_t size)
{
	json_t *j = api_mp_decode(in, size);
	msgpack_unpacked u;
	size_t off = 0;
	/* The watch cache's splice of a resourceVersion: safe on any bytes;
	 * on bytes as api_mp_encode writes them (its contract: what follows
	 * metadata is not read), the same as setting it on the decoded one. */
	char *rv = NULL, *enc = NULL;
	size_t rvlen = 0, enclen = 0;
	bool ours = j && api_mp_encode(j, &enc, &enclen) == 0 && enclen == size &&
	    memcmp(enc, in, size) == 0;
	free(enc);
	if (api_mp_with_rv(in, size, 42, &rv, &rvlen) == 0) {
		json_t *md = json_object_get(j, "metadata");
		if (ours && json_is_object(md)) {
			json_t *k = api_mp_decode(rv, rvlen);
			json_object_set_new(md, "resourceVersion", json_string("42"));
			CHECK(k != NULL && json_equal(j, k));
			json_decref(k);
			json_object_del(md, "resourceVersion");
		}
		free(rv);
	}
	if (j == NULL) {
		check_mp_json(in, size, NULL, NULL);
		return;
	}
	check_mp_roundtrip(j);
	msgpack_unpacked_init(&u);
	/* msgpack-c stops at 32 levels; below that both must agree */
	if (msgpack_unpack_next(&u, (const char *)in, size, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		json_t *k = api_json_from_mp(&u.data);
		CHECK(off == size);
		CHECK(k != NULL && json_equal(j, k));
		json_decref(k);
		check_mp_json(in, size, j, &u.data);
	} else {
		check_mp_json(in, size, j, NULL);
	}
	msgpack_unpacked_destroy(&u);
	json_decref(j);
}

/* The decoders are bounded by their length: copy the input so ASan sees
 * any read past its end, even when libFuzzer's buffer is larger. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t mode, n;
	uint8_t *in;
	if (size == 0)
		return 0;
	mode = data[0] % NMODES;
	n = size - 1;
	in = malloc(n + (mode == 5 ? 4 : 0) + 1);
	CHECK(in != NULL);
	if (mode == 5) {
		memcpy(in, "k8s", 4); /* with its NUL */
		memcpy(in + 4, data + 1, n);
		n += 4;
	} else {
		memcpy(in, data + 1, n);
	}
	if (content_types[mode] == NULL)
		fuzz_mp(in, n);
	else
		fuzz_body(mode, in, n);
	free(in);
	return 0;
}

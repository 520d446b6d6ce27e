/* tests/fuzz/fuzz_api_select.c — libFuzzer target for two parsers of
 * what users type: selectors (plugins/apiserver/select.c: kubectl's -l
 * and --field-selector, LabelSelector objects) and resource quantities
 * (admit_quantity.c, Kubernetes' resource.ParseQuantity).
 *
 * Input: byte 0 picks the mode (low nibble, see enum mode) and, for the
 * selector modes, the sample object (high nibble, an index into kinds[],
 * whose resource also decides which fields a field selector may name).
 *
 * Selector modes: the selector before the first NUL, then optionally a
 * JSON object: one with metadata is the object, any other object is the
 * labels of the kind's sample. A refusal is a 400 BadRequest Status. An
 * accepted selector must choose the same on the json_t
 * (api_selector_match) as on the bytes the watch cache holds for that
 * object (api_selector_match_mp on api_mp_encode's bytes with
 * api_mp_with_rv's resourceVersion), with no memo, a fresh one, the
 * same one again, and one the cache's namespace and name filters filled
 * first; a field requirement the cache indexes by (api_selector_eq)
 * holds on every object it selects.
 *
 * Quantity modes: text (or a JSON number or string) before the first
 * NUL, another after it. An accepted quantity's canonical text parses to
 * an equal quantity with the same text (Kubernetes re-emits canonical
 * form as it is); zeros added to its fraction change nothing (the value
 * is the exact decimal, rounded up to nano units once); comparison is
 * antisymmetric.
 * Seeds: tests/fuzz/api_select/ (byte 0 as above).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "api.h"
#include "codec.h"
#include "fuzz.h"
#include "server.h"

enum mode {
	M_LABEL,    /* api_label_selector */
	M_FIELD,    /* api_field_selector for the kind's resource */
	M_JSON_SEL, /* api_selector_from_json: a LabelSelector object */
	M_QTY,      /* adm_qty_parse */
	M_QTY_JSON, /* adm_qty_json on a JSON number or string */
	NMODES
};

/* Samples with labels, the fields their resources are selected by, and
 * a namespace and name for the cache's filters. */
static const struct {
	const char *group, *plural, *sample;
} kinds[] = {
	{ "", "pods",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
	    "\"web-0\",\"namespace\":\"default\",\"labels\":{\"app\":\"web\","
	    "\"tier\":\"a\",\"canary\":\"\",\"n\":\"5\"}},\"spec\":{\"nodeName\":"
	    "\"n1\",\"restartPolicy\":\"Always\",\"hostNetwork\":true},"
	    "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.5\"}}" },
	{ "", "configmaps",
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	    "\"cfg\",\"namespace\":\"default\",\"labels\":{\"environment\":"
	    "\"prod\"}},\"data\":{\"a\":\"1\"}}" },
	{ "", "nodes",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":"
	    "\"n1\",\"labels\":{\"kubernetes.io/hostname\":\"n1\"}},\"spec\":"
	    "{\"unschedulable\":false}}" },
	{ "", "events",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":"
	    "\"e1\",\"namespace\":\"default\"},\"involvedObject\":{\"kind\":"
	    "\"Pod\",\"name\":\"web-0\",\"uid\":\"u-1\"},\"reason\":\"Pulled\","
	    "\"type\":\"Normal\",\"count\":3}" },
	{ "apps", "replicasets",
	    "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":"
	    "{\"name\":\"web-1\",\"namespace\":\"default\",\"labels\":{\"app\":"
	    "\"web\"}},\"status\":{\"replicas\":2}}" },
	{ "", "namespaces",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
	    "\"default\"},\"status\":{\"phase\":\"Active\"}}" },
	{ "", "secrets",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
	    "\"s\",\"namespace\":\"default\"},\"type\":\"Opaque\"}" },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

#define RV 7

/* len bytes and a NUL, in exactly that much. */
static char *exact_str(const void *b, size_t len)
{
	char *c = malloc(len + 1);

	CHECK(c != NULL);
	memcpy(c, b, len);
	c[len] = '\0';
	return c;
}

/* --- selectors ------------------------------------------------------------ */

/* A refusal: 400 BadRequest with a message the Status can carry. */
static void check_refusal(struct api_error *e)
{
	CHECK(e->code == 400 && e->reason && !strcmp(e->reason, "BadRequest"));
	CHECK(e->message[0] != '\0');
	json_t *s = api_status(e);
	CHECK(s != NULL && json_object_get(s, "message") != NULL);
	json_decref(s);
	api_err_clear(e);
}

/* The object to match: obj text with metadata as is, any other object
 * as the labels of the kind's sample; NULL when it is not an object. */
static json_t *object_of(size_t kind, const char *text, size_t len)
{
	struct api_error e = { 0 };
	json_t *j = NULL, *o;

	if (text != NULL) {
		j = api_parse_body("application/json", text, len, &e);
		api_err_clear(&e);
		if (!json_is_object(j)) {
			json_decref(j);
			return NULL;
		}
		if (json_object_get(j, "metadata"))
			return j;
	}
	o = json_loads(kinds[kind].sample, 0, NULL);
	CHECK(o != NULL);
	if (j != NULL)
		json_object_set_new(json_object_get(o, "metadata"), "labels", j);
	return o;
}

/* The watch cache's bytes of obj (cache.c, event_object): the store's
 * encoding, which has no resourceVersion, with one spliced in, and obj
 * given the same; an object with no metadata map is encoded as it is. */
static char *cache_bytes(json_t *obj, size_t *len)
{
	char *mp = NULL, *with = NULL, *c;
	size_t mplen = 0, wl = 0;
	json_t *md = json_object_get(obj, "metadata");

	json_object_del(md, "resourceVersion");
	CHECK(api_mp_encode(obj, &mp, &mplen) == 0);
	if (api_mp_with_rv(mp, mplen, RV, &with, &wl) == 0) {
		json_object_set_new(md, "resourceVersion", json_string("7"));
		c = exact_copy(with, wl);
		*len = wl;
	} else {
		c = exact_copy(mp, mplen);
		*len = mplen;
	}
	free(mp);
	free(with);
	json_t *back = api_mp_decode(c, *len);
	CHECK(back != NULL && json_equal(back, obj));
	json_decref(back);
	return c;
}

/* The cache's index: an object s selects has the value s requires at
 * a path (api_selector_eq), as api_mp_field reads it. */
static void check_index(const struct api_selector *s, const char *mp,
    size_t len)
{
	static const char *const paths[] = { "metadata.name",
		"metadata.namespace", "spec.nodeName", "involvedObject.uid",
		"status.phase", "type" };
	char buf[64];

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		const char *want = api_selector_eq(s, paths[i]);
		if (want && api_mp_field(mp, len, paths[i], NULL, buf, sizeof buf))
			CHECK(!strcmp(buf, want));
	}
}

static void check_match(const struct api_selector *s, json_t *obj)
{
	struct api_mp_memo memo, filled;
	size_t len = 0;
	char *mp = cache_bytes(obj, &len);
	bool want = api_selector_match(s, obj);

	memset(&memo, 0, sizeof memo);
	memset(&filled, 0, sizeof filled);
	CHECK(api_selector_match_mp(s, mp, len, NULL) == want);
	CHECK(api_selector_match_mp(s, mp, len, &memo) == want);
	CHECK(api_selector_match_mp(s, mp, len, &memo) == want);
	/* as cache.c's matches(): namespace and name first, one memo */
	(void)api_mp_str_is(mp, len, "metadata.namespace", "default", &filled);
	(void)api_mp_str_is(mp, len, "metadata.name", "web-0", &filled);
	CHECK(api_selector_match_mp(s, mp, len, &filled) == want);
	if (api_selector_empty(s))
		CHECK(want);
	if (want)
		check_index(s, mp, len);
	free(mp);
}

static void fuzz_selector(enum mode mode, size_t kind, const char *text,
    size_t tlen, const char *objtext, size_t olen)
{
	const struct api_resource *r =
	    api_resource_find(kinds[kind].group, "v1", kinds[kind].plural);
	struct api_error e = { 0 };
	struct api_selector *s;
	json_t *sel = NULL, *obj;

	CHECK(r != NULL);
	if (mode == M_JSON_SEL) {
		sel = api_parse_body("application/json", text, tlen, &e);
		api_err_clear(&e);
		if (sel == NULL)
			return;
		s = api_selector_from_json(sel, &e);
	} else if (mode == M_LABEL) {
		s = api_label_selector(text, &e);
	} else {
		s = api_field_selector(r, text, &e);
	}
	if (s == NULL) {
		check_refusal(&e);
		goto out;
	}
	CHECK(e.code == 0);
	obj = object_of(kind, objtext, olen);
	if (obj != NULL)
		check_match(s, obj);
	json_decref(obj);
	api_selector_free(s);
out:
	json_decref(sel);
}

/* --- quantities ----------------------------------------------------------- */

/* The text of q, and that text parsed again: equal, with the same text. */
static void check_canonical(const struct adm_qty *q)
{
	char text[64], again[64];
	struct adm_qty r;

	adm_qty_text(q, text, sizeof text);
	CHECK(text[0] != '\0');
	CHECK(adm_qty_parse(text, &r) == NULL);
	CHECK(adm_qty_cmp(q, &r) == 0 && adm_qty_cmp(&r, q) == 0);
	adm_qty_text(&r, again, sizeof again);
	CHECK(!strcmp(text, again));
	CHECK(adm_qty_sign(q) == adm_qty_sign(&r));
	CHECK(adm_qty_is_int(q) == adm_qty_is_int(&r));
}

/* s with zeros added to its fraction (a fraction made when it has
 * none): the same number. */
static void check_more_zeros(const char *s, const struct adm_qty *q)
{
	static const char zeros[] = "000000000000000000000000000000000000000000";
	size_t n = strlen(s), at = 0;
	struct adm_qty r;
	bool dot;

	if (s[at] == '+' || s[at] == '-')
		at++;
	while (s[at] >= '0' && s[at] <= '9')
		at++;
	dot = s[at] == '.';
	if (dot)
		for (at++; s[at] >= '0' && s[at] <= '9'; at++)
			;
	char *t = malloc(n + sizeof zeros + 1);
	CHECK(t != NULL);
	memcpy(t, s, at);
	size_t k = at;
	if (!dot)
		t[k++] = '.';
	memcpy(t + k, zeros, sizeof zeros - 1);
	k += sizeof zeros - 1;
	memcpy(t + k, s + at, n - at + 1);
	CHECK(adm_qty_parse(t, &r) == NULL);
	CHECK(adm_qty_cmp(q, &r) == 0);
	free(t);
}

/* No UB in what admission asks of a quantity besides its text. */
static void use_quantity(const struct adm_qty *q)
{
	struct adm_qty m = *q;
	char text[64];

	(void)adm_qty_sign(q);
	(void)adm_qty_is_int(q);
	adm_qty_round_milli(&m);
	adm_qty_text(&m, text, sizeof text);
	CHECK(adm_qty_cmp(&m, q) >= 0 || adm_qty_sign(q) < 0);
}

/* One quantity: 0 when it parses into q. */
static int quantity(enum mode mode, const char *text, size_t len,
    struct adm_qty *q)
{
	const char *err;

	if (mode == M_QTY) {
		err = adm_qty_parse(text, q);
		if (err == NULL)
			check_more_zeros(text, q);
	} else {
		json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);
		if (v == NULL)
			return -1;
		err = adm_qty_json(v, q);
		json_decref(v);
	}
	if (err != NULL) {
		CHECK(!strcmp(err, ADM_QTY_FORMAT) || !strcmp(err, ADM_QTY_SUFFIX));
		return -1;
	}
	check_canonical(q);
	use_quantity(q);
	return 0;
}

static void fuzz_quantity(enum mode mode, const char *a, size_t alen,
    const char *b, size_t blen)
{
	struct adm_qty x, y;

	if (quantity(mode, a, alen, &x) != 0)
		return;
	CHECK(adm_qty_cmp(&x, &x) == 0);
	if (b == NULL || quantity(mode, b, blen, &y) != 0)
		return;
	CHECK(adm_qty_cmp(&x, &y) == -adm_qty_cmp(&y, &x));
}

/* --- the input ------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	enum mode mode = (enum mode)((data[0] & 0x0f) % NMODES);
	size_t kind = (size_t)(data[0] >> 4) % NKINDS;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	const char *nul = memchr(in, 0, n);
	size_t alen = nul ? (size_t)(nul - in) : n;
	/* both parts as C strings of their own, each exactly allocated */
	char *a = exact_str(in, alen), *b = NULL;
	size_t blen = 0;

	if (nul) {
		blen = n - alen - 1;
		b = exact_str(nul + 1, blen);
	}
	if (mode >= M_QTY)
		fuzz_quantity(mode, a, alen, b, blen);
	else
		fuzz_selector(mode, kind, a, alen, b, blen);
	free(a);
	free(b);
	return 0;
}

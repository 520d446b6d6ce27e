/* plugins/apiserver/evwrite.c — a kubelet's Event on its bytes (see
 * evwrite.h). One pass over the bytes checks the event; the stored
 * bytes are its bytes with the two stamps spliced in at the end of its
 * metadata. That is what the JSON path writes only when every value is
 * as msgpack-c packs it (the shortest head), which the pass checks too:
 * strings of printable ASCII, maps, one small integer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>

#include "admit.h"
#include "codec.h"
#include "evwrite.h"

#define TEXT_MAX 1024 /* longer texts are the JSON path's */

/* The head msgpack-c writes for a str, a map of n, or the integer n. */
static size_t str_head(uint64_t n) { return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5; }
static size_t map_head(uint64_t n) { return n < 16 ? 1 : n < 65536 ? 3 : 5; }
static size_t uint_head(uint64_t n) { return n < 128 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5; }

/* Every byte of s is printable ASCII (0x20-0x7e): eight at a time, a
 * byte below 0x20 borrowing into its top bit when 0x20 is taken from
 * it, one above 0x7e carrying into it when 1 is added (or having it). */
static bool printable(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, tops = 0x8080808080808080ull;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, s + i, 8);
		if (((x - 0x20 * ones) & ~x & tops) || ((x + ones) | x) & tops)
			return false;
	}
	for (; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* A str at c (a bin would be stored as a str) in its shortest head, of
 * at most max bytes of printable ASCII, which a JSON string holds as it
 * is (no escapes, no UTF-8 to check): its bytes in *s, *n; c past it. */
static bool text_at(struct api_mpc *c, size_t max, const char **s, size_t *n)
{
	const unsigned char *at = c->p;
	struct api_mval v;
	if (at >= c->end || !api_mp_str_type(*at) || !api_mpc_read(c, &v) ||
	    v.kind != API_MV_STR || v.n > max || (size_t)(c->p - at) != str_head(v.n) + v.n)
		return false;
	*s = (const char *)c->p - v.n;
	*n = (size_t)v.n;
	return printable(*s, *n);
}

/* A map at c in its shortest head: its size in *n, c at its first key. */
static bool map_at(struct api_mpc *c, uint64_t *n)
{
	const unsigned char *at = c->p;
	struct api_mval v;
	if (!api_mpc_read(c, &v) || v.kind != API_MV_MAP)
		return false;
	*n = v.n;
	return (size_t)(c->p - at) == map_head(v.n);
}

/* The key at c: its index in keys[] (n keys), once each (seen); -1 for
 * any other key. */
static int key_at(struct api_mpc *c, const char *const keys[], int n, unsigned *seen)
{
	const char *s;
	size_t l;
	if (!text_at(c, 64, &s, &l))
		return -1;
	for (int i = 0; i < n; i++) {
		/* s is printable: strncmp stops at a shorter key's NUL */
		if (l == 0 || keys[i][0] != s[0] || strncmp(keys[i], s, l) || keys[i][l])
			continue;
		if (*seen & (1u << i))
			return -1;
		*seen |= 1u << i;
		return i;
	}
	return -1;
}

/* A map at c of texts under keys[] (n keys): each one's bytes in s[i],
 * l[i] (NULL: absent); c past it. */
static bool text_map(struct api_mpc *c, const char *const keys[], int n, const char *s[],
    size_t l[])
{
	uint64_t size;
	unsigned seen = 0;
	for (int i = 0; i < n; i++)
		s[i] = NULL;
	if (!map_at(c, &size))
		return false;
	for (uint64_t k = 0; k < size; k++) {
		int i = key_at(c, keys, n, &seen);
		if (i < 0 || !text_at(c, TEXT_MAX, &s[i], &l[i]))
			return false;
	}
	return true;
}

static bool is(const char *s, size_t l, const char *want)
{
	return s && l == strlen(want) && !memcmp(s, want, l);
}

/* s passes the name check fn. */
static bool name_ok(adm_name_fn fn, const char *s)
{
	struct adm_msgs m = { 0 };
	fn(s, false, &m);
	return m.n == 0;
}

enum { E_API, E_KIND, E_META, E_INVOLVED, E_REASON, E_MESSAGE, E_SOURCE, E_FIRST, E_LAST,
	E_COUNT, E_TYPE, E_RCOMP, E_RINST, E_N };
static const char *const ev_keys[E_N] = { "apiVersion", "kind", "metadata",
	"involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp",
	"count", "type", "reportingComponent", "reportingInstance" };
static const char *const md_keys[] = { "name", "namespace" };
static const char *const io_keys[] = { "kind", "namespace", "name", "uid", "apiVersion",
	"resourceVersion", "fieldPath" };
static const char *const src_keys[] = { "component", "host" };

/* Where the stamps go: the metadata map's head and its end. */
struct md_at {
	const unsigned char *head, *body, *end;
};

/* One top-level field's value at c, checked (i: its index in ev_keys). */
static bool field(struct api_mpc *c, int i, const char *ns, char name[256], struct md_at *md)
{
	const char *s, *v[7];
	size_t l, vl[7];
	struct api_mval n;
	const unsigned char *at = c->p;
	switch (i) {
	case E_META:
		/* as the kubelet names it, in the request's namespace */
		md->head = c->p;
		if (!text_map(c, md_keys, 2, v, vl) || v[0] == NULL || vl[0] == 0 || vl[0] > 253 ||
		    !is(v[1], vl[1], ns))
			return false;
		md->body = md->head + 1; /* a fixmap of 2 */
		md->end = c->p;
		memcpy(name, v[0], vl[0]);
		name[vl[0]] = '\0';
		return true;
	case E_INVOLVED:
		/* legacyValidateEvent without an eventTime: the object's
		 * namespace is the event's */
		return text_map(c, io_keys, 7, v, vl) && is(v[1], vl[1], ns);
	case E_SOURCE:
		return text_map(c, src_keys, 2, v, vl);
	case E_COUNT:
		/* an int32, as a JSON integer and msgpack-c write it */
		return api_mpc_read(c, &n) && n.kind == API_MV_INT && n.i >= 0 &&
		    n.i <= INT32_MAX && (size_t)(c->p - at) == uint_head((uint64_t)n.i);
	case E_FIRST:
	case E_LAST:
		/* as decoding writes it back ("" becomes null) */
		return text_at(c, TEXT_MAX, &s, &l) && adm_canonical_time(s, l);
	case E_API:
		return text_at(c, TEXT_MAX, &s, &l) && is(s, l, "v1");
	case E_KIND:
		return text_at(c, TEXT_MAX, &s, &l) && is(s, l, "Event");
	default:
		return text_at(c, TEXT_MAX, &s, &l);
	}
}

/* The event is one this file writes as the JSON path would. */
static bool plain_event(const void *data, size_t len, const char *ns, char name[256],
    struct md_at *md)
{
	struct api_mpc c = { data, (const unsigned char *)data + len };
	uint64_t size;
	unsigned seen = 0;
	if (!map_at(&c, &size))
		return false;
	for (uint64_t k = 0; k < size; k++) {
		int i = key_at(&c, ev_keys, E_N, &seen);
		if (i < 0 || !field(&c, i, ns, name, md))
			return false;
	}
	const unsigned need = 1u << E_API | 1u << E_KIND | 1u << E_META | 1u << E_INVOLVED;
	if (c.p != c.end || (seen & need) != need)
		return false;
	struct adm_msgs m = { 0 };
	adm_dns1123_subdomain(ns, &m);
	return m.n == 0 && name_ok(adm_name_subdomain, name) && name_ok(adm_name_label, ns);
}

enum api_pstat api_event_create_mp(const void *data, size_t len, const char *ns,
    const char *uid, const char *now, char **out, size_t *outlen, char name[256])
{
	struct md_at md = { 0 };
	*out = NULL;
	*outlen = 0;
	if (data == NULL || len == 0 || ns == NULL || !plain_event(data, len, ns, name, &md))
		return API_PSTAT_JSON;
	/* stamp_new's two, last in metadata in its order (the buffer holds
	 * them all: no write grows it) */
	const unsigned char *d = data;
	msgpack_sbuffer sb = { .alloc = len + 64 + strlen(uid) + strlen(now) };
	msgpack_packer pk;
	if ((sb.data = malloc(sb.alloc)) == NULL)
		return API_PSTAT_NOMEM;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int rc = msgpack_sbuffer_write(&sb, data, (size_t)(md.head - d)) |
	    msgpack_pack_map(&pk, 4) |
	    msgpack_sbuffer_write(&sb, (const char *)md.body, (size_t)(md.end - md.body)) |
	    kb_mp_pack(&pk, "s:s, s:s", "uid", uid, "creationTimestamp", now) |
	    msgpack_sbuffer_write(&sb, (const char *)md.end, len - (size_t)(md.end - d));
	if (rc) {
		msgpack_sbuffer_destroy(&sb);
		return API_PSTAT_NOMEM;
	}
	*out = sb.data;
	*outlen = sb.size;
	return API_PSTAT_OK;
}

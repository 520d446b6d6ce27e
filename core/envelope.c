/* core/envelope.c — bounds-checked reading and writing of bus frames. */
#include <string.h>

#include <kubus/err.h>

#include "envelope.h"

static const char *const type_names[] = {
	[KB_ENV_REQ] = "req", [KB_ENV_REP] = "rep", [KB_ENV_ERR] = "err",
	[KB_ENV_PUB] = "pub", [KB_ENV_HELLO] = "hello", [KB_ENV_SUB] = "sub",
	[KB_ENV_UNSUB] = "unsub", [KB_ENV_REG] = "reg", [KB_ENV_READY] = "ready",
	[KB_ENV_PING] = "ping", [KB_ENV_PONG] = "pong",
};

const char *kb_env_type_name(int t)
{
	if (t < KB_ENV_REQ || t > KB_ENV_PONG)
		return "?";
	return type_names[t];
}

struct cur {
	const uint8_t *p, *end;
};

static int need(struct cur *c, size_t n)
{
	return (size_t)(c->end - c->p) >= n ? 0 : -1;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Skip one value; depth bounds nesting so hostile input cannot recurse. */
static int skip(struct cur *c, int depth)
{
	if (depth > 64 || need(c, 1))
		return -1;
	uint8_t b = *c->p++;
	uint64_t n = 0, items = 0;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return 0;
	if ((b & 0xe0) == 0xa0) {
		n = b & 0x1f;
		goto bytes;
	}
	if ((b & 0xf0) == 0x90) {
		items = b & 0x0f;
		goto seq;
	}
	if ((b & 0xf0) == 0x80) {
		items = 2 * (uint64_t)(b & 0x0f);
		goto seq;
	}
	switch (b) {
	case 0xcc: case 0xd0: n = 1; goto bytes;
	case 0xcd: case 0xd1: n = 2; goto bytes;
	case 0xca: case 0xce: case 0xd2: n = 4; goto bytes;
	case 0xcb: case 0xcf: case 0xd3: n = 8; goto bytes;
	case 0xd4: n = 2; goto bytes;  /* fixext 1: type + 1 */
	case 0xd5: n = 3; goto bytes;
	case 0xd6: n = 5; goto bytes;
	case 0xd7: n = 9; goto bytes;
	case 0xd8: n = 17; goto bytes;
	case 0xc4: case 0xd9:
		if (need(c, 1)) return -1;
		n = c->p[0]; c->p += 1; goto bytes;
	case 0xc5: case 0xda:
		if (need(c, 2)) return -1;
		n = be(c->p, 2); c->p += 2; goto bytes;
	case 0xc6: case 0xdb:
		if (need(c, 4)) return -1;
		n = be(c->p, 4); c->p += 4; goto bytes;
	case 0xc7:
		if (need(c, 1)) return -1;
		n = (uint64_t)c->p[0] + 1; c->p += 1; goto bytes;
	case 0xc8:
		if (need(c, 2)) return -1;
		n = be(c->p, 2) + 1; c->p += 2; goto bytes;
	case 0xc9:
		if (need(c, 4)) return -1;
		n = be(c->p, 4) + 1; c->p += 4; goto bytes;
	case 0xdc:
		if (need(c, 2)) return -1;
		items = be(c->p, 2); c->p += 2; goto seq;
	case 0xdd:
		if (need(c, 4)) return -1;
		items = be(c->p, 4); c->p += 4; goto seq;
	case 0xde:
		if (need(c, 2)) return -1;
		items = 2 * be(c->p, 2); c->p += 2; goto seq;
	case 0xdf:
		if (need(c, 4)) return -1;
		items = 2 * be(c->p, 4); c->p += 4; goto seq;
	default:
		return -1; /* 0xc1 is never used */
	}
bytes:
	if (need(c, n))
		return -1;
	c->p += n;
	return 0;
seq:
	/* Each item takes at least a byte: a count larger than what is left
	 * is a lie, caught before looping over it. */
	if (items > (uint64_t)(c->end - c->p))
		return -1;
	for (uint64_t i = 0; i < items; i++)
		if (skip(c, depth + 1))
			return -1;
	return 0;
}

size_t kb_mp_skip(const uint8_t *buf, size_t len)
{
	struct cur c = { buf, buf + len };
	if (skip(&c, 0))
		return 0;
	return (size_t)(c.p - buf);
}

static int rd_str(struct cur *c, const char **s, uint32_t *n)
{
	if (need(c, 1))
		return -1;
	uint8_t b = *c->p;
	uint64_t len;
	if ((b & 0xe0) == 0xa0) {
		len = b & 0x1f;
		c->p += 1;
	} else if (b == 0xd9 && !need(c, 2)) {
		len = c->p[1];
		c->p += 2;
	} else if (b == 0xda && !need(c, 3)) {
		len = be(c->p + 1, 2);
		c->p += 3;
	} else if (b == 0xdb && !need(c, 5)) {
		len = be(c->p + 1, 4);
		c->p += 5;
	} else {
		return -1;
	}
	if (need(c, len))
		return -1;
	*s = (const char *)c->p;
	*n = (uint32_t)len;
	c->p += len;
	return 0;
}

static int rd_cstr(struct cur *c, char *out, size_t cap)
{
	const char *s;
	uint32_t n;
	if (rd_str(c, &s, &n) || n >= cap || memchr(s, '\0', n))
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int rd_int(struct cur *c, int64_t *out)
{
	if (need(c, 1))
		return -1;
	uint8_t b = *c->p++;
	if (b <= 0x7f) {
		*out = b;
		return 0;
	}
	if (b >= 0xe0) {
		*out = (int8_t)b;
		return 0;
	}
	int n;
	bool sign;
	switch (b) {
	case 0xcc: n = 1; sign = false; break;
	case 0xcd: n = 2; sign = false; break;
	case 0xce: n = 4; sign = false; break;
	case 0xcf: n = 8; sign = false; break;
	case 0xd0: n = 1; sign = true; break;
	case 0xd1: n = 2; sign = true; break;
	case 0xd2: n = 4; sign = true; break;
	case 0xd3: n = 8; sign = true; break;
	default: return -1;
	}
	if (need(c, (size_t)n))
		return -1;
	uint64_t v = be(c->p, n);
	c->p += n;
	if (sign) {
		int shift = 64 - 8 * n;
		*out = shift ? ((int64_t)(v << shift)) >> shift : (int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return -1;
		*out = (int64_t)v;
	}
	return 0;
}

/* Correlation ids are uint64 on the wire (the encoder packs them so):
 * accept the whole range, not only what fits an int64. */
static int rd_uint(struct cur *c, uint64_t *out)
{
	if (!need(c, 9) && c->p[0] == 0xcf) {
		*out = be(c->p + 1, 8);
		c->p += 9;
		return 0;
	}
	int64_t iv;
	if (rd_int(c, &iv) || iv < 0)
		return -1;
	*out = (uint64_t)iv;
	return 0;
}

static int rd_len(struct cur *c, uint8_t fix_mask, uint8_t fix_tag,
    uint8_t b16, uint8_t b32, uint32_t *n)
{
	if (need(c, 1))
		return -1;
	uint8_t b = *c->p;
	if ((b & fix_mask) == fix_tag) {
		*n = b & (uint8_t)~fix_mask;
		c->p += 1;
	} else if (b == b16 && !need(c, 3)) {
		*n = (uint32_t)be(c->p + 1, 2);
		c->p += 3;
	} else if (b == b32 && !need(c, 5)) {
		*n = (uint32_t)be(c->p + 1, 4);
		c->p += 5;
	} else {
		return -1;
	}
	return 0;
}

static int rd_map(struct cur *c, uint32_t *n)
{
	return rd_len(c, 0xf0, 0x80, 0xde, 0xdf, n);
}

static int rd_array(struct cur *c, uint32_t *n)
{
	return rd_len(c, 0xf0, 0x90, 0xdc, 0xdd, n);
}

static int type_from(const char *s, uint32_t n)
{
	for (int t = KB_ENV_REQ; t <= KB_ENV_PONG; t++)
		if (strlen(type_names[t]) == n && memcmp(type_names[t], s, n) == 0)
			return t;
	return 0;
}

static int rd_err(struct cur *c, struct kb_env *env)
{
	uint32_t n;
	if (rd_map(c, &n))
		return -1;
	env->ecode = KB_EINTERNAL;
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		uint32_t kn;
		char reason[48];
		if (rd_str(c, &k, &kn))
			return -1;
		if (kn == 6 && memcmp(k, "reason", 6) == 0) {
			if (rd_cstr(c, reason, sizeof(reason)))
				return -1;
			env->ecode = kb_err_from_reason(reason);
		} else if (kn == 7 && memcmp(k, "message", 7) == 0) {
			if (rd_cstr(c, env->emsg, sizeof(env->emsg)))
				return -1;
		} else if (skip(c, 1)) {
			return -1;
		}
	}
	return 0;
}

#define KEY(k, lit) (kn == sizeof(lit) - 1 && memcmp(k, lit, kn) == 0)

int kb_env_decode(const uint8_t *buf, size_t len, struct kb_env *env,
    const char **why)
{
	struct cur c = { buf, buf + len };
	uint32_t n;
	memset(env, 0, offsetof(struct kb_env, groups));
	env->ngroups = 0;
	env->body = NULL;
	env->body_len = 0;
	env->ecode = 0;
	env->emsg[0] = '\0';
	env->seen = 0;
	*why = "not a msgpack map";
	if (rd_map(&c, &n))
		return KB_EPROTO;
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		uint32_t kn;
		int64_t iv;
		*why = "map key is not a string";
		if (rd_str(&c, &k, &kn))
			return KB_EPROTO;
		if (KEY(k, "v")) {
			*why = "`v` is not an integer";
			if (rd_int(&c, &iv) || iv < 0)
				return KB_EPROTO;
			env->v = (uint64_t)iv;
			env->seen |= KB_ENV_HAS_V;
		} else if (KEY(k, "t")) {
			const char *s;
			uint32_t sn;
			*why = "`t` is not a known message type";
			if (rd_str(&c, &s, &sn) || (env->t = type_from(s, sn)) == 0)
				return KB_EPROTO;
			env->seen |= KB_ENV_HAS_T;
		} else if (KEY(k, "id")) {
			*why = "`id` is not an unsigned integer";
			if (rd_uint(&c, &env->id))
				return KB_EPROTO;
			env->seen |= KB_ENV_HAS_ID;
		} else if (KEY(k, "dl")) {
			*why = "`dl` is not an integer";
			if (rd_int(&c, &iv) || iv < 0)
				return KB_EPROTO;
			env->dl = iv;
		} else if (KEY(k, "src")) {
			*why = "`src` is not a string of at most 127 bytes";
			if (rd_cstr(&c, env->src, sizeof(env->src)))
				return KB_EPROTO;
		} else if (KEY(k, "p")) {
			*why = "`p` is not a string of at most 127 bytes";
			if (rd_cstr(&c, env->p, sizeof(env->p)))
				return KB_EPROTO;
		} else if (KEY(k, "dst")) {
			*why = "`dst` is not a string of at most 255 bytes";
			if (rd_cstr(&c, env->dst, sizeof(env->dst)))
				return KB_EPROTO;
		} else if (KEY(k, "op")) {
			*why = "`op` is not a string of at most 63 bytes";
			if (rd_cstr(&c, env->op, sizeof(env->op)))
				return KB_EPROTO;
		} else if (KEY(k, "g")) {
			uint32_t gn;
			*why = "`g` is not an array of at most 16 short strings";
			if (rd_array(&c, &gn) || gn > KB_ENV_MAX_GROUPS)
				return KB_EPROTO;
			for (uint32_t j = 0; j < gn; j++)
				if (rd_cstr(&c, env->groups[j], sizeof(env->groups[j])))
					return KB_EPROTO;
			env->ngroups = gn;
		} else if (KEY(k, "b")) {
			*why = "`b` is not one well-formed msgpack value";
			size_t bl = kb_mp_skip(c.p, (size_t)(c.end - c.p));
			if (bl == 0)
				return KB_EPROTO;
			env->body = c.p;
			env->body_len = bl;
			c.p += bl;
		} else if (KEY(k, "e")) {
			*why = "`e` is not a map of reason and message";
			if (rd_err(&c, env))
				return KB_EPROTO;
		} else {
			/* Unknown keys are skipped: a newer minor version may add
			 * some, and ignoring them is what keeps it compatible. */
			*why = "malformed value";
			if (skip(&c, 1))
				return KB_EPROTO;
		}
	}
	*why = "trailing bytes after the envelope";
	if (c.p != c.end)
		return KB_EPROTO;
	*why = "`v` or `t` missing";
	if ((env->seen & (KB_ENV_HAS_V | KB_ENV_HAS_T)) !=
	    (KB_ENV_HAS_V | KB_ENV_HAS_T))
		return KB_EPROTO;
	*why = "`id` missing";
	if (!(env->seen & KB_ENV_HAS_ID) && env->t != KB_ENV_PUB &&
	    env->t != KB_ENV_SUB && env->t != KB_ENV_UNSUB &&
	    env->t != KB_ENV_REG && env->t != KB_ENV_READY)
		return KB_EPROTO;
	if (env->t == KB_ENV_ERR && env->ecode == 0)
		env->ecode = KB_EINTERNAL;
	*why = NULL;
	return 0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
	pack_str(pk, k);
}

void kb_env_encode(msgpack_sbuffer *sb, int t, uint64_t id, const char *src,
    const char *p, const char *const *groups, size_t ngroups, const char *dst,
    const char *op, int64_t dl, const void *body, size_t body_len, int ecode,
    const char *emsg)
{
	msgpack_packer pk;
	size_t start = sb->size;
	static const uint8_t zero[4];
	msgpack_sbuffer_write(sb, (const char *)zero, 4);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	size_t n = 3 + (src != NULL) + (p != NULL) + (groups != NULL) +
	    (dst != NULL) + (op != NULL) + (dl > 0) + (body != NULL) +
	    (ecode != 0);
	msgpack_pack_map(&pk, n);
	pack_key(&pk, "v");
	msgpack_pack_uint32(&pk, KB_PROTO_VERSION);
	pack_key(&pk, "t");
	pack_str(&pk, kb_env_type_name(t));
	pack_key(&pk, "id");
	msgpack_pack_uint64(&pk, id);
	if (src) {
		pack_key(&pk, "src");
		pack_str(&pk, src);
	}
	if (p) {
		pack_key(&pk, "p");
		pack_str(&pk, p);
	}
	if (groups) {
		pack_key(&pk, "g");
		msgpack_pack_array(&pk, ngroups);
		for (size_t i = 0; i < ngroups; i++)
			pack_str(&pk, groups[i]);
	}
	if (dst) {
		pack_key(&pk, "dst");
		pack_str(&pk, dst);
	}
	if (op) {
		pack_key(&pk, "op");
		pack_str(&pk, op);
	}
	if (dl > 0) {
		pack_key(&pk, "dl");
		msgpack_pack_int64(&pk, dl);
	}
	if (body) {
		pack_key(&pk, "b");
		msgpack_sbuffer_write(sb, body, body_len);
	}
	if (ecode) {
		pack_key(&pk, "e");
		msgpack_pack_map(&pk, 3);
		pack_key(&pk, "code");
		msgpack_pack_int(&pk, kb_err_http(ecode));
		pack_key(&pk, "reason");
		pack_str(&pk, kb_err_reason(ecode));
		pack_key(&pk, "message");
		pack_str(&pk, emsg ? emsg : "");
	}
	uint32_t len = (uint32_t)(sb->size - start - 4);
	uint8_t *hdr = (uint8_t *)sb->data + start;
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

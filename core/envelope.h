/* core/envelope.h — the wire form of a bus message between hosts.
 *
 * A frame is a 4-byte big-endian length and then one msgpack map with the
 * short keys of DESIGN.md: v, t, id, src, p, g (groups), dst, op, b, dl, e.
 * The decoder reads the map in place and hands back the body as a byte
 * range of the frame, so a body is never re-encoded on its way through.
 * It is the first code to touch bytes from a peer: it checks every length
 * against the buffer and rejects anything it does not fully understand.
 */
#ifndef KUBUS_CORE_ENVELOPE_H
#define KUBUS_CORE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#define KB_PROTO_VERSION 1
#define KB_ENV_MAX_GROUPS 16

enum kb_env_type {
	KB_ENV_REQ = 1, /* same values as enum kb_msg_type */
	KB_ENV_REP = 2,
	KB_ENV_ERR = 3,
	KB_ENV_PUB = 4,
	KB_ENV_HELLO = 5, /* b: {token, name} -> rep {user, groups} */
	KB_ENV_SUB = 6,   /* dst: pattern */
	KB_ENV_UNSUB = 7,
	KB_ENV_REG = 8,   /* dst: service the peer serves */
	KB_ENV_READY = 9, /* the peer has registered everything */
	KB_ENV_PING = 10, /* b: {t: ms of silence before the peer hangs up} */
	KB_ENV_PONG = 11, /* the answer to a ping, same id */
};

struct kb_env {
	uint64_t v;
	int t;
	uint64_t id;
	int64_t dl;     /* ms left, 0 = none */
	char src[128];
	char p[128];
	char dst[256];
	char op[64];
	size_t ngroups;
	char groups[KB_ENV_MAX_GROUPS][96];
	const uint8_t *body; /* into the frame; NULL when absent */
	size_t body_len;
	int ecode;           /* kb_err from e.reason */
	char emsg[1024];
	uint32_t seen;       /* bit per key present (KB_ENV_HAS_*) */
};

#define KB_ENV_HAS_V (1u << 0)
#define KB_ENV_HAS_T (1u << 1)
#define KB_ENV_HAS_ID (1u << 2)

/* Decode one envelope (without the length prefix). 0, or KB_EPROTO with a
 * reason in `why` (static string). On KB_EPROTO, env->id is set if it was
 * read before the fault, so the peer can be told which message failed. */
int kb_env_decode(const uint8_t *buf, size_t len, struct kb_env *env,
    const char **why);

/* Encode a frame, length prefix included, into `sb` (appended). `body` is
 * one msgpack value already encoded (NULL: no `b`). */
void kb_env_encode(msgpack_sbuffer *sb, int t, uint64_t id, const char *src,
    const char *p, const char *const *groups, size_t ngroups, const char *dst,
    const char *op, int64_t dl, const void *body, size_t body_len, int ecode,
    const char *emsg);

/* Length of the msgpack value at buf, or 0 when malformed or truncated. */
size_t kb_mp_skip(const uint8_t *buf, size_t len);

const char *kb_env_type_name(int t);

#endif

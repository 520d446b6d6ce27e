/* tests/fuzz/fuzz_envelope.c — libFuzzer target for the envelope decoder.
 *
 * Whatever bytes come, kb_env_decode must refuse them or decode them
 * within bounds; and what it decodes must survive kb_env_encode and a
 * second decode unchanged (the codec is its own inverse), or we abort.
 * Seeds: tests/fuzz/envelope/ (written by tests/fuzz/envelope_seeds.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/err.h>

#include "envelope.h"
#include "fuzz.h"

/* kb_env_decode is documented to be bounded by `len`: copy the input so
 * ASan sees any read past its end, even when libFuzzer's buffer is larger. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_env *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	uint8_t *in = (uint8_t *)exact_copy(data, size);
	CHECK(a && b);
	const char *why = NULL;
	int rc = kb_env_decode(in, size, a, &why);
	if (rc != 0) {
		CHECK(rc == KB_EPROTO);
		CHECK(why != NULL && why[0] != '\0');
		goto out;
	}
	CHECK(why == NULL);
	CHECK(a->t >= KB_ENV_REQ && a->t <= KB_ENV_PONG);
	CHECK(a->ngroups <= KB_ENV_MAX_GROUPS);
	CHECK(a->body == NULL ||
	    (a->body > in && a->body + a->body_len <= in + size));
	CHECK(
	    a->body == NULL || kb_mp_skip(a->body, a->body_len) == a->body_len);
	CHECK(a->t != KB_ENV_ERR || a->ecode != 0);
	CHECK(a->dl >= 0);

	const char *groups[KB_ENV_MAX_GROUPS];
	for (size_t i = 0; i < a->ngroups; i++)
		groups[i] = a->groups[i];
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	kb_env_encode(&sb, a->t, a->id, a->src[0] ? a->src : NULL,
	    a->p[0] ? a->p : NULL, a->ngroups ? groups : NULL, a->ngroups,
	    a->dst[0] ? a->dst : NULL, a->op[0] ? a->op : NULL, a->dl, a->body,
	    a->body_len, a->ecode, a->emsg);
	CHECK(sb.size >= 4);
	const uint8_t *f = (const uint8_t *)sb.data;
	CHECK(((size_t)f[0] << 24 | (size_t)f[1] << 16 | (size_t)f[2] << 8 |
		  f[3]) == sb.size - 4);
	rc = kb_env_decode(f + 4, sb.size - 4, b, &why);
	if (rc != 0)
		fprintf(stderr, "fuzz-envelope: re-encoded frame refused: %s\n",
		    why);
	CHECK(rc == 0);
	/* The encoder always speaks this version; everything else survives. */
	CHECK(b->v == KB_PROTO_VERSION);
	CHECK(b->t == a->t);
	CHECK(b->id == a->id);
	CHECK(b->dl == a->dl);
	CHECK(strcmp(b->src, a->src) == 0);
	CHECK(strcmp(b->p, a->p) == 0);
	CHECK(strcmp(b->dst, a->dst) == 0);
	CHECK(strcmp(b->op, a->op) == 0);
	CHECK(b->ngroups == a->ngroups);
	for (size_t i = 0; i < a->ngroups; i++)
		CHECK(strcmp(b->groups[i], a->groups[i]) == 0);
	CHECK((b->body == NULL) == (a->body == NULL));
	CHECK(b->body_len == a->body_len);
	CHECK(a->body == NULL || memcmp(b->body, a->body, a->body_len) == 0);
	CHECK(b->ecode == a->ecode);
	/* The message travels only with an error code. */
	CHECK(strcmp(b->emsg, a->ecode ? a->emsg : "") == 0);
	msgpack_sbuffer_destroy(&sb);
out:
	free(in);
	free(a);
	free(b);
	return 0;
}

/* tests/fuzz/envelope_seeds.c — writes the seed corpus tests/fuzz/envelope/:
 * one valid frame (without its length prefix) per envelope type, plus a few
 * shapes the decoder must also know (no id, unknown keys, nested body).
 * The files are committed; rerun after changing the envelope:
 *
 *   cc -Icore -Isdk/include $(pkg-config --cflags --libs msgpack) \
 *       tests/fuzz/envelope_seeds.c -o /tmp/seeds && /tmp/seeds tests/fuzz/envelope
 *
 * It compiles the codec in directly, so it needs no build directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/envelope.c"
#include "../../sdk/src/err.c"

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Write the envelope in sb (length prefix dropped) after checking it. */
static void put_frame(const char *dir, const char *name, msgpack_sbuffer *sb,
    size_t skip)
{
	struct kb_env e;
	const char *why;
	const uint8_t *p = (const uint8_t *)sb->data + skip;
	if (kb_env_decode(p, sb->size - skip, &e, &why) != 0) {
		fprintf(stderr, "%s: does not decode: %s\n", name, why);
		exit(1);
	}
	put(dir, name, p, sb->size - skip);
	msgpack_sbuffer_destroy(sb);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/envelope";
	static const char *const groups[] = { "system:masters",
		"kubus:plugins" };
	msgpack_sbuffer body, sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&body);
	msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "metadata", 8);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "name", 4);
	msgpack_pack_str_with_body(&pk, "web-1", 5);
	msgpack_pack_str_with_body(&pk, "labels", 6);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "app", 3);
	msgpack_pack_str_with_body(&pk, "web", 3);
	msgpack_pack_str_with_body(&pk, "spec", 4);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int64(&pk, -5);
	msgpack_pack_uint64(&pk, 1ull << 40);
	msgpack_pack_double(&pk, 0.25);
	msgpack_pack_bin_with_body(&pk, "\0\1\2", 3);

	for (int t = KB_ENV_REQ; t <= KB_ENV_PONG; t++) {
		char name[32];
		msgpack_sbuffer_init(&sb);
		kb_env_encode(&sb, t, 1000 + (uint64_t)t, "node-1#3",
		    "user:alice", groups, 2, "api", "create", 30000, body.data,
		    body.size, t == KB_ENV_ERR ? KB_ENOTFOUND : 0,
		    t == KB_ENV_ERR ? "pods \"web-1\" not found" : NULL);
		snprintf(name, sizeof(name), "full-%s", kb_env_type_name(t));
		put_frame(dir, name, &sb, 4);
	}

	/* A bare publication and a hello, as peers send them. */
	msgpack_sbuffer_init(&sb);
	kb_env_encode(&sb, KB_ENV_PUB, 0, NULL, NULL, NULL, 0, "events/pods",
	    NULL, 0, "\x81\xa1v\x01", 4, 0, NULL);
	put_frame(dir, "pub-min", &sb, 4);
	msgpack_sbuffer_init(&sb);
	kb_env_encode(&sb, KB_ENV_HELLO, 1, NULL, NULL, NULL, 0, NULL, NULL, 0,
	    "\x82\xa5token\xa4"
	    "abcd\xa4name\xa6node-1",
	    24, 0, NULL);
	put_frame(dir, "hello", &sb, 4);

	/* No id (allowed on pub), an unknown key with a nested value, an `e`
	 * with extra keys, and an id at the top of the uint64 range. */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "t", 1);
	msgpack_pack_str_with_body(&pk, "err", 3);
	msgpack_pack_str_with_body(&pk, "id", 2);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_str_with_body(&pk, "future", 6);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_map(&pk, 0);
	msgpack_pack_ext(&pk, 1, 5);
	msgpack_pack_ext_body(&pk, "z", 1);
	msgpack_pack_str_with_body(&pk, "e", 1);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "code", 4);
	msgpack_pack_int(&pk, 409);
	msgpack_pack_str_with_body(&pk, "reason", 6);
	msgpack_pack_str_with_body(&pk, "Conflict", 8);
	msgpack_pack_str_with_body(&pk, "message", 7);
	msgpack_pack_str_with_body(&pk, "stale", 5);
	put_frame(dir, "unknown-keys", &sb, 0);

	msgpack_sbuffer_destroy(&body);
	return 0;
}

/* plugins/store-etcd/codec.c — base64, etcd JSON KVs -> msgpack, results. */
#include "etcd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ec_b64_enc(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t olen = 4 * ((len + 2) / 3);
	char *out = malloc(olen + 1), *q = out;
	if (!out)
		return NULL;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
		    p[i + 2];
		*q++ = b64[v >> 18];
		*q++ = b64[(v >> 12) & 63];
		*q++ = b64[(v >> 6) & 63];
		*q++ = b64[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		*q++ = b64[v >> 18];
		*q++ = b64[(v >> 12) & 63];
		*q++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		*q++ = '=';
	}
	*q = '\0';
	return out;
}

static int b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

unsigned char *ec_b64_dec(const char *s, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *out = malloc(n / 4 * 3 + 4), *q = out;
	if (!out)
		return NULL;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val((unsigned char)s[i]);
		if (v < 0)
			continue; /* '=' padding */
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*q++ = (unsigned char)(acc >> bits);
		}
	}
	*q = '\0';
	*len = (size_t)(q - out);
	return out;
}

json_t *ec_jb64(const void *data, size_t len)
{
	char *s = ec_b64_enc(data, len);
	if (!s)
		return NULL;
	json_t *j = json_stringn_nocheck(s, strlen(s));
	free(s);
	return j;
}

int64_t ec_jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

bool ec_jb64_eq(const json_t *s, const void *data, size_t len)
{
	const char *t = json_string_value(s);
	size_t n = 0;
	unsigned char *d = ec_b64_dec(t ? t : "", &n);
	if (!d)
		return false;
	bool eq = n == len && (len == 0 || memcmp(d, data, len) == 0);
	free(d);
	return eq;
}

void ec_mp_str(msgpack_packer *pk, const char *s)
{
	ec_mp_strn(pk, s, strlen(s));
}

void ec_mp_strn(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_b64(msgpack_packer *pk, const json_t *s, bool as_bin)
{
	const char *t = json_string_value(s);
	size_t n = 0;
	unsigned char *d = ec_b64_dec(t ? t : "", &n);
	if (!d) {
		n = 0;
	}
	if (as_bin) {
		msgpack_pack_bin(pk, n);
		msgpack_pack_bin_body(pk, d, n);
	} else {
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, d, n);
	}
	free(d);
}

/* {key, value, create_rev, mod_rev, version} from an etcd mvccpb.KeyValue
 * in JSON (zero fields are left out by the gateway). */
void ec_pack_kv(msgpack_packer *pk, const json_t *kv, bool with_value)
{
	msgpack_pack_map(pk, with_value ? 5 : 4);
	ec_mp_str(pk, "key");
	pack_b64(pk, json_object_get(kv, "key"), false);
	if (with_value) {
		ec_mp_str(pk, "value");
		pack_b64(pk, json_object_get(kv, "value"), true);
	}
	ec_mp_str(pk, "create_rev");
	msgpack_pack_int64(pk, ec_jint(kv, "create_revision"));
	ec_mp_str(pk, "mod_rev");
	msgpack_pack_int64(pk, ec_jint(kv, "mod_revision"));
	ec_mp_str(pk, "version");
	msgpack_pack_int64(pk, ec_jint(kv, "version"));
}

const msgpack_object *ec_mp_key(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *e = &map->via.map.ptr[i];
		if (e->key.type == MSGPACK_OBJECT_STR &&
		    e->key.via.str.size == kl &&
		    memcmp(e->key.via.str.ptr, key, kl) == 0)
			return &e->val;
	}
	return NULL;
}

bool ec_mp_int(const msgpack_object *map, const char *key, int64_t *out)
{
	const msgpack_object *v = ec_mp_key(map, key);
	if (!v)
		return false;
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    v->via.u64 <= INT64_MAX) {
		*out = (int64_t)v->via.u64;
		return true;
	}
	if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = v->via.i64;
		return true;
	}
	return false;
}

bool ec_mp_bool(const msgpack_object *map, const char *key, bool *out)
{
	const msgpack_object *v = ec_mp_key(map, key);
	if (!v || v->type != MSGPACK_OBJECT_BOOLEAN)
		return false;
	*out = v->via.boolean;
	return true;
}

void ec_out_init(struct ec_out *o)
{
	memset(o, 0, sizeof *o);
	msgpack_sbuffer_init(&o->sb);
	msgpack_packer_init(&o->pk, &o->sb, msgpack_sbuffer_write);
}

void ec_out_reset(struct ec_out *o)
{
	msgpack_sbuffer_clear(&o->sb);
	o->code = 0;
	o->has_body = false;
	o->msg[0] = '\0';
}

void ec_out_destroy(struct ec_out *o)
{
	msgpack_sbuffer_destroy(&o->sb);
}

int ec_out_err(struct ec_out *o, int code, const char *fmt, ...)
{
	msgpack_sbuffer_clear(&o->sb);
	o->has_body = false;
	o->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof o->msg, fmt, ap);
	va_end(ap);
	return code;
}

/* plugins/apiserver/codec.h — private to the body decoders: codec.c (the
 * dispatch by Content-Type, JSON, msgpack), yaml.c (YAML -> json_t),
 * proto.c (the Kubernetes protobuf envelope and wire format) and
 * proto_schema.c (the messages proto.c knows), and the in-place msgpack
 * reader (api_mpc_*) that the watch cache's selectors (select.c), the api
 * bus service's request reader (busapi.c) and the store replies
 * (store.c) share with the decoder. The rest of the API server sees api.h
 * only.
 */
#ifndef KUBUS_APISERVER_CODEC_H
#define KUBUS_APISERVER_CODEC_H

#include "api.h"

/* Deepest nesting of objects and arrays a body may have: Kubernetes'
 * objects need about 20; the limit keeps recursion (ours and jansson's)
 * and the msgpack form bounded. */
#define API_MAX_DEPTH 100

/* JSON text -> json_t, depth-limited, objects or arrays at the top only.
 * `ctx` prefixes the message ("couldn't get version/kind; json parse
 * error"). NULL with e set to 400 on failure. */
json_t *api_json_decode(const char *data, size_t len, const char *ctx,
    struct api_error *e);

/* One YAML document -> json_t with Kubernetes' (go-yaml v2's) typing of
 * plain scalars. NULL with e set to 400. */
json_t *api_yaml_decode(const char *data, size_t len, struct api_error *e);

/* A "k8s\0"-prefixed runtime.Unknown -> json_t with kind and apiVersion.
 * NULL with e set: 400 for malformed input, 415 for a kind with no schema. */
json_t *api_proto_decode(const void *data, size_t len, struct api_error *e);

/* --- protobuf schemas (proto_schema.c) -------------------------------------- */

enum pb_type {
	PB_STRING = 1,
	PB_BYTES, /* base64 in JSON, as Go encodes []byte */
	PB_INT32,
	PB_INT64,
	PB_BOOL,
	PB_MSG,
	PB_MAP_STRING,   /* map<string, string> */
	PB_MAP_BYTES,    /* map<string, bytes>: Secret.data, binaryData */
	PB_MAP_QUANTITY, /* map<string, Quantity>: resources */
	PB_INTSTR,       /* intstr.IntOrString -> JSON number or string */
	PB_QUANTITY,     /* resource.Quantity {1: string} -> string */
	PB_TIME,         /* meta.v1.Time -> "2006-01-02T15:04:05Z" */
	PB_MICROTIME,    /* meta.v1.MicroTime -> "…05.000000Z" */
	PB_FIELDS,       /* meta.v1.FieldsV1 {1: raw JSON} -> the JSON */
};

enum {
	PB_REP = 1 << 0, /* repeated: a JSON array */
	/* Keep zero values (0, "", false) in JSON: Go pointers and fields
	 * without omitempty. Others are omitted when zero, as Go does. */
	PB_KEEP = 1 << 1,
	/* An embedded Go struct (json:",inline"): its fields go into the
	 * enclosing object. */
	PB_INLINE = 1 << 2,
};

struct pb_msg;

struct pb_field {
	unsigned num;
	unsigned char type; /* enum pb_type */
	unsigned char flags;
	const char *name;         /* the JSON name */
	const struct pb_msg *msg; /* PB_MSG */
};

struct pb_msg {
	const char *name; /* Go type name, for messages */
	const struct pb_field *fields;
	size_t nfields;
};

struct pb_kind {
	const char *api_version;
	const char *kind;
	const struct pb_msg *msg;
};

extern const struct pb_kind pb_kinds[];
extern const size_t pb_nkinds;

/* Reading msgpack bytes in place (objects as the store and the bus carry
 * them): the decoder below, the watch cache's selectors (select.c) and the
 * resourceVersion splices all walk values with this one cursor. */
struct api_mpc {
	const unsigned char *p, *end;
};
enum { API_MV_NIL, API_MV_BOOL, API_MV_INT, API_MV_REAL, API_MV_STR, API_MV_MAP,
	API_MV_ARR, API_MV_EXT };
struct api_mval {
	int kind;
	uint64_t n;      /* str: bytes; map: pairs; arr: items */
	const char *s;   /* str (and bin: both read as strings) */
	int64_t i;       /* int */
	double d;        /* real (and unsigned integers past INT64_MAX) */
	bool b;          /* bool */
};
/* One value's head: scalars and strings whole, a map or an array up to
 * its first element. False at the end of the bytes or on 0xc1. */
bool api_mpc_read(struct api_mpc *c, struct api_mval *v);
/* Past one whole value, depth levels down already; false when it is not
 * one within the bytes, holds an ext (nothing of ours writes one) or
 * nests too deep. */
bool api_mpc_skip(struct api_mpc *c, int depth);
/* In the map at c, move c to key's value (the first such key). */
bool api_mpc_find(struct api_mpc *c, const char *key, size_t kl);

/* msgpack_unpack's limit, which the SDK's decoding (kb_body_obj) keeps:
 * a container opened with 32 others open is refused. */
#define API_MP_SDK_DEPTH 32
/* t is the type byte of a msgpack str (not bin). */
bool api_mp_str_type(unsigned char t);
/* Past one value at `level` (a body is 0) that the SDK's decoding takes;
 * false for anything else, ext included (taken there, not here). */
bool api_mpc_skip_sdk(struct api_mpc *c, int level);
/* kb_mp_int(kb_body_obj(body), key) read from the bytes: true when they
 * could be read so (*found: the first str key `key` holds an integer in
 * int64_t, *out); false when the SDK's tree is to be asked instead. */
bool api_mp_body_int(const void *data, size_t len, const char *key, bool *found,
    int64_t *out);

/* The value at c as api_mp_decode makes it, c moved past it; NULL when
 * it is not one, or has anything (even a scalar) more than `levels`
 * containers below it (0: a scalar or an empty container only). */
json_t *api_mp_decode_next(struct api_mpc *c, int levels);

#endif

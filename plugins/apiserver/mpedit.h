/* plugins/apiserver/mpedit.h — small edits of a msgpack object without a
 * JSON tree: the object, unpacked by msgpack-c, is packed again with the
 * edits applied. Everything the edits do not touch is packed as it was
 * (msgpack_pack_object), so an object api_mp_encode wrote comes out as
 * api_mp_encode would write the edited object: the same keys in the same
 * order, a new key last in its map, as jansson adds it.
 */
#ifndef KUBUS_APISERVER_MPEDIT_H
#define KUBUS_APISERVER_MPEDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

enum mpe_op {
	/* The value at path becomes `value`; a missing key is added last in
	 * its map, with the maps on the way to it. */
	MPE_SET,
	/* The array at path loses every element that is a map whose `match`
	 * field is a string equal to `value`'s, and gets `value` appended:
	 * a list of maps keyed by a field (status.conditions by type). A
	 * missing key or a value that is not an array becomes [value]. */
	MPE_UPSERT,
};

struct mpe_edit {
	const char *path;            /* keys separated by '.', no escapes */
	enum mpe_op op;
	const msgpack_object *value;
	const char *match;           /* MPE_UPSERT: the key field */
};

/* Pack `obj` (a map) with the edits applied (at most MPE_MAX_EDITS,
 * paths of at most MPE_MAX_DEPTH keys). KB_EINVAL when a path goes
 * through something that is not a map, when one edit's path is a prefix
 * of another's, or for an UPSERT whose value has no string `match`;
 * KB_ENOMEM when the packer fails. On error the packer holds part of the
 * object. */
#define MPE_MAX_EDITS 8
#define MPE_MAX_DEPTH 8
int mpe_pack(msgpack_packer *pk, const msgpack_object *obj,
    const struct mpe_edit *edits, size_t n);

/* A string value (str, or bin as a string that went through a packer
 * without str8): its bytes in *s, *len. */
bool mpe_str(const msgpack_object *o, const char **s, size_t *len);

/* A map's value for key (its first), NULL when map is NULL, no map or
 * lacks it. */
const msgpack_object *mpe_key(const msgpack_object *map, const char *key);

/* o is a string (as mpe_str reads one) equal to want. */
bool mpe_str_is(const msgpack_object *o, const char *want);

/* o is an integer that a JSON integer holds (api_json_from_mp makes a
 * real of one past INT64_MAX): its value in *v. */
bool mpe_int(const msgpack_object *o, int64_t *v);

/* The resourceVersion that api_mp_with_rv splices in last, dropped from
 * an unpacked metadata map (md points into the caller's zone): what
 * remains is the stored object's. False when md is no map or its last
 * entry is no resourceVersion. */
bool mpe_drop_rv(msgpack_object *md);

/* A string msgpack_object borrowing `s`. */
msgpack_object mpe_cstr(const char *s);

#endif

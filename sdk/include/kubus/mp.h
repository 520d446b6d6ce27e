/* kubus/mp.h — msgpack helpers: read nested maps by path, build by format.
 *
 * Kubernetes objects travel as msgpack maps with the JSON field names, so
 * most plugin code reads "metadata.name" or "spec.containers[0].image" and
 * builds small nested maps. These helpers do both without boilerplate.
 * Every pointer returned points into the object passed in (borrowed).
 */
#ifndef KUBUS_MP_H
#define KUBUS_MP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "bus.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- reading ------------------------------------------------------------- */

/* The value under `key` in a map with string keys; NULL when absent or
 * when `map` is not a map. */
const msgpack_object *kb_mp_key(const msgpack_object *map, const char *key);
const msgpack_object *kb_mp_keyn(const msgpack_object *map, const char *key,
    size_t keylen);

/* Follow a path: keys separated by '.', array indexes as "[i]", e.g.
 * "spec.containers[0].ports[1].containerPort" or "matrix[1][0]". A key
 * containing '.', '[' or '\\' is written with a backslash before it:
 * "metadata.labels.app\\.kubernetes\\.io/name" (in C source, so each
 * backslash is doubled). Each key is at most 255 bytes. The empty path is
 * `o` itself. NULL when any step is missing or of the wrong type. */
const msgpack_object *kb_mp_get(const msgpack_object *o, const char *path);

/* Typed reads of a path. They return false (and leave *out alone) when the
 * value is absent or of another type; integers accept any msgpack integer
 * that fits. */
bool kb_mp_str(const msgpack_object *o, const char *path, const char **s,
    size_t *len);
bool kb_mp_int(const msgpack_object *o, const char *path, int64_t *out);
bool kb_mp_uint(const msgpack_object *o, const char *path, uint64_t *out);
bool kb_mp_bool(const msgpack_object *o, const char *path, bool *out);
bool kb_mp_double(const msgpack_object *o, const char *path, double *out);
/* True when the path holds exactly the string `s`. */
bool kb_mp_streq(const msgpack_object *o, const char *path, const char *s);
/* A malloc'd NUL-terminated copy of the string at `path`, or NULL. */
char *kb_mp_strdup(const msgpack_object *o, const char *path);
/* True for a msgpack string equal to `s`. */
bool kb_mp_is(const msgpack_object *o, const char *s);

/* --- building ------------------------------------------------------------ */

/* Pack values described by a format, as jansson's json_pack does:
 *   {  }   a map; keys and values alternate inside
 *   [  ]   an array
 *   s      const char * (NULL packs nil)
 *   S      const char *, size_t len
 *   i      int            I  int64_t          u  uint64_t
 *   b      int as bool    f  double           n  nil
 *   o      const msgpack_object * (packed as is; NULL packs nil)
 *   r      const void *, size_t: bytes already msgpack-encoded, copied in
 * Spaces, ',' and ':' are ignored. Returns 0 or KB_EINVAL for a bad format
 * (after packing what came before it).
 *     kb_mp_pack(pk, "{s:s, s:{s:i}}", "kind", "Pod", "spec", "replicas", 3);
 */
int kb_mp_pack(msgpack_packer *pk, const char *fmt, ...);
int kb_mp_vpack(msgpack_packer *pk, const char *fmt, va_list ap);

/* The same, straight into a new body; NULL on a bad format or no memory. */
kb_body *kb_mp_body(const char *fmt, ...);

/* Pack a C string (nil for NULL). */
void kb_mp_pack_cstr(msgpack_packer *pk, const char *s);

/* An empty sbuffer whose first block is `size` bytes rather than
 * msgpack's 8 KiB (which kb_body_from_sbuf would copy out of, for a small
 * body): for objects known to be small. Without memory, msgpack allocates
 * at the first write as it would. */
void kb_mp_sbuffer_init(msgpack_sbuffer *sb, size_t size);

/* Render a value as compact JSON-like text for logs and messages, at most
 * `cap` bytes including the NUL; returns `buf`. */
char *kb_mp_repr(const msgpack_object *o, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif

/* plugins/apiserver/podstatus.c — a status merge patch on a pod's bytes
 * (see podstatus.h). */
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>

#include "admit.h"
#include "mpedit.h"
#include "podstatus.h"

static bool str_is(const msgpack_object *o, const char *want)
{
	const char *s;
	size_t n;
	return mpe_str(o, &s, &n) && n == strlen(want) && !memcmp(s, want, n);
}

static const msgpack_object *key_of(const msgpack_object *map, const char *key)
{
	return map && map->type == MSGPACK_OBJECT_MAP ? kb_mp_key(map, key) : NULL;
}

/* The old status (NULL: none) merged with the patch, decoded as
 * admission decodes it: {"status": …}, or NULL where the JSON path is
 * the one to answer. */
static json_t *merged_status(const struct api_resource *r, const msgpack_object *old,
    const json_t *patch)
{
	json_t *base = json_object();
	if (base == NULL)
		return NULL;
	if (old) {
		json_t *o = api_json_from_mp(old);
		if (o == NULL || json_object_set_new(base, "status", o)) {
			json_decref(base);
			return NULL;
		}
	}
	struct api_error e = { 0 };
	json_t *st = api_patch(API_PATCH_MERGE, r, base, patch, &e);
	json_decref(base);
	api_err_clear(&e);
	if (st == NULL)
		return NULL;
	const struct adm_stype *t = adm_schema("", "Pod");
	json_t *unknown = json_array();
	char err[256];
	if (unknown)
		adm_unknown_fields(t, st, unknown);
	bool ok = unknown && json_array_size(unknown) == 0 &&
	    adm_decode(t, st, err, sizeof err) && json_object_size(st) == 1 &&
	    json_is_object(json_object_get(st, "status"));
	json_decref(unknown);
	if (!ok) {
		json_decref(st);
		return NULL;
	}
	return st;
}

/* The pod (rv dropped) packed with the status `st` ({"status": …}) in
 * place of its own, into sb. */
static enum api_pstat pack_pod(const msgpack_object *pod, const json_t *st,
    msgpack_sbuffer *sb)
{
	char *smp = NULL;
	size_t slen = 0, off = 0;
	msgpack_zone z;
	msgpack_object w;
	if (api_mp_encode(st, &smp, &slen) != 0)
		return API_PSTAT_NOMEM;
	if (!msgpack_zone_init(&z, slen * 2 + 256)) {
		free(smp);
		return API_PSTAT_NOMEM;
	}
	enum api_pstat r = API_PSTAT_JSON;
	if (msgpack_unpack(smp, slen, &off, &z, &w) == MSGPACK_UNPACK_SUCCESS &&
	    off == slen && w.type == MSGPACK_OBJECT_MAP && w.via.map.size == 1) {
		msgpack_packer pk;
		msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
		const struct mpe_edit edit = { "status", MPE_SET, &w.via.map.ptr[0].val, NULL };
		int rc = mpe_pack(&pk, pod, &edit, 1);
		r = rc == 0 ? API_PSTAT_OK : rc == KB_EINVAL ? API_PSTAT_JSON : API_PSTAT_NOMEM;
	}
	msgpack_zone_destroy(&z);
	free(smp);
	return r;
}

enum api_pstat api_pod_status_mp_rv(const struct api_resource *r, const void *data,
    size_t len, const json_t *patch, const char *node, char **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	if (data == NULL || len == 0 || !json_is_object(patch) || json_object_size(patch) != 1 ||
	    !json_is_object(json_object_get(patch, "status")))
		return API_PSTAT_JSON;
	msgpack_zone z;
	msgpack_object pod;
	size_t off = 0;
	if (!msgpack_zone_init(&z, len * 2 + 1024))
		return API_PSTAT_NOMEM;
	enum api_pstat ret = API_PSTAT_JSON;
	json_t *st = NULL;
	/* Not decodable here (msgpack-c stops at 32 levels): the JSON path's. */
	if (msgpack_unpack(data, len, &off, &z, &pod) != MSGPACK_UNPACK_SUCCESS || off != len ||
	    pod.type != MSGPACK_OBJECT_MAP)
		goto out;
	/* md points into the zone: editable */
	msgpack_object *md = (msgpack_object *)key_of(&pod, "metadata");
	if (!mpe_drop_rv(md) || key_of(md, "resourceVersion") || key_of(md, "deletionTimestamp"))
		goto out;
	/* carry_over sets both: where they are not as it sets them, the
	 * JSON path's bytes differ */
	if (!str_is(key_of(&pod, "kind"), "Pod") || !str_is(key_of(&pod, "apiVersion"), "v1"))
		goto out;
	if (node && !str_is(key_of(key_of(&pod, "spec"), "nodeName"), node))
		goto out;
	const msgpack_object *old = key_of(&pod, "status");
	if ((old && old->type != MSGPACK_OBJECT_MAP) || (st = merged_status(r, old, patch)) == NULL)
		goto out;
	msgpack_sbuffer sb = { .alloc = len + 512 };
	if ((sb.data = malloc(sb.alloc)) == NULL) {
		ret = API_PSTAT_NOMEM;
		goto out;
	}
	ret = pack_pod(&pod, st, &sb);
	if (ret == API_PSTAT_OK) {
		*out = sb.data;
		*outlen = sb.size;
	} else {
		msgpack_sbuffer_destroy(&sb);
	}
out:
	json_decref(st);
	msgpack_zone_destroy(&z);
	return ret;
}

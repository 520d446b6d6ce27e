/* plugins/apiserver/podbind.c — a pod's binding (see podbind.h). */
#include <stdlib.h>
#include <string.h>

#include "mpedit.h"
#include "podbind.h"

enum api_bind api_pod_bind_json(json_t *pod, const char *node, const char *now,
    const char **cur)
{
	const char *was = api_get_str(pod, "spec.nodeName");
	if (was && *was) {
		*cur = was;
		return API_BIND_ASSIGNED;
	}
	if (api_get(pod, "metadata.deletionTimestamp"))
		return API_BIND_DELETING;
	api_set(pod, "spec.nodeName", json_string(node));
	json_t *cond = json_object();
	json_object_set_new(cond, "type", json_string("PodScheduled"));
	json_object_set_new(cond, "status", json_string("True"));
	json_object_set_new(cond, "lastTransitionTime", json_string(now));
	json_t *conds = api_get(pod, "status.conditions");
	if (!json_is_array(conds)) {
		conds = json_array();
		api_set(pod, "status.conditions", conds);
	}
	for (size_t i = 0; i < json_array_size(conds);) {
		if (!strcmp(api_get_str(json_array_get(conds, i), "type") ?: "", "PodScheduled"))
			json_array_remove(conds, i);
		else
			i++;
	}
	json_array_append_new(conds, cond);
	return API_BIND_OK;
}

static enum api_bind bind_obj(const msgpack_object *pod, const char *node,
    const char *now, bool with_rv, msgpack_packer *pk, const char **cur, size_t *curlen)
{
	if (pod->type != MSGPACK_OBJECT_MAP)
		return API_BIND_JSON;
	const msgpack_object *spec = mpe_key(pod, "spec");
	const msgpack_object *md = mpe_key(pod, "metadata");
	/* md points into the caller's zone: editable */
	if (with_rv && !mpe_drop_rv((msgpack_object *)md))
		return API_BIND_JSON;
	/* As the JSON path reads a string: up to its first NUL. */
	if (mpe_str(mpe_key(spec, "nodeName"), cur, curlen) && *curlen && **cur) {
		return API_BIND_ASSIGNED;
	}
	if (mpe_key(md, "deletionTimestamp"))
		return API_BIND_DELETING;
	if (mpe_key(md, "resourceVersion"))
		return API_BIND_JSON;
	msgpack_object_kv kv[3] = {
		{ mpe_cstr("type"), mpe_cstr("PodScheduled") },
		{ mpe_cstr("status"), mpe_cstr("True") },
		{ mpe_cstr("lastTransitionTime"), mpe_cstr(now) },
	};
	msgpack_object cond = { .type = MSGPACK_OBJECT_MAP };
	cond.via.map.size = 3;
	cond.via.map.ptr = kv;
	msgpack_object name = mpe_cstr(node);
	const struct mpe_edit edits[] = {
		{ "spec.nodeName", MPE_SET, &name, NULL },
		{ "status.conditions", MPE_UPSERT, &cond, "type" },
	};
	int rc = mpe_pack(pk, pod, edits, 2);
	return rc == 0 ? API_BIND_OK : rc == KB_EINVAL ? API_BIND_JSON : API_BIND_NOMEM;
}

static enum api_bind bind_bytes(const void *data, size_t len, bool with_rv,
    const char *node, const char *now, char **out, size_t *outlen, const char **cur,
    size_t *curlen)
{
	msgpack_zone z;
	msgpack_object pod;
	size_t off = 0;
	*out = NULL;
	if (data == NULL || len == 0)
		return API_BIND_JSON;
	if (!msgpack_zone_init(&z, len * 2 + 1024))
		return API_BIND_NOMEM;
	/* Not decodable here (msgpack-c stops at 32 levels): the JSON path
	 * decodes it, or says it is corrupt. */
	if (msgpack_unpack(data, len, &off, &z, &pod) != MSGPACK_UNPACK_SUCCESS || off != len) {
		msgpack_zone_destroy(&z);
		return API_BIND_JSON;
	}
	msgpack_sbuffer sb = { .alloc = len + 160 };
	msgpack_packer pk;
	if ((sb.data = malloc(sb.alloc)) == NULL) {
		msgpack_zone_destroy(&z);
		return API_BIND_NOMEM;
	}
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	enum api_bind r = bind_obj(&pod, node, now, with_rv, &pk, cur, curlen);
	msgpack_zone_destroy(&z);
	if (r != API_BIND_OK) {
		msgpack_sbuffer_destroy(&sb);
		return r;
	}
	*out = sb.data;
	*outlen = sb.size;
	return API_BIND_OK;
}

enum api_bind api_pod_bind_mp(const void *data, size_t len, const char *node,
    const char *now, char **out, size_t *outlen, const char **cur, size_t *curlen)
{
	return bind_bytes(data, len, false, node, now, out, outlen, cur, curlen);
}

enum api_bind api_pod_bind_mp_rv(const void *data, size_t len, const char *node,
    const char *now, char **out, size_t *outlen, const char **cur, size_t *curlen)
{
	return bind_bytes(data, len, true, node, now, out, outlen, cur, curlen);
}

/* plugins/runtime-runc/state.c — the sandbox and container records under
 * state_dir, as small JSON files written atomically, so that a restarted
 * kubelet (a new runtime instance) sees what runs. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <jansson.h>

#include "rr.h"

void rr_cdir(struct rr *r, const char *id, const char *name, char *out,
    size_t len)
{
	if (name)
		snprintf(out, len, "%s/containers/%s/%s", r->state_dir, id,
		    name);
	else
		snprintf(out, len, "%s/containers/%s", r->state_dir, id);
}

static void sbpath(struct rr *r, const char *id, char *out, size_t len)
{
	snprintf(out, len, "%s/sandboxes/%s.json", r->state_dir, id);
}

static int save(const char *path, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL)
		return KB_ENOMEM;
	int rc = rr_write_atomic(path, text, strlen(text)) ? KB_ESYS : 0;
	free(text);
	return rc;
}

static json_t *load(const char *path)
{
	if (access(path, F_OK) != 0)
		return NULL; /* errno says why */
	json_error_t je;
	json_t *o = json_load_file(path, 0, &je);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	if (o == NULL)
		errno = EINVAL;
	return o;
}

static void get_str(json_t *o, const char *key, char *out, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));
	snprintf(out, len, "%s", s ? s : "");
}

int rr_sandbox_save(struct rr *r, const struct rr_sandbox *sb)
{
	char path[PATH_MAX];
	sbpath(r, sb->id, path, sizeof(path));
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I}",
		"id", sb->id, "uid", sb->uid, "namespace", sb->ns, "name",
		sb->name, "hostname", sb->hostname, "netns", sb->netns, "ip",
		sb->ip, "hostNetwork", sb->host_network, "ownNetns",
		sb->own_netns, "created", (json_int_t)sb->created_ms);
	if (o == NULL)
		return KB_ENOMEM;
	return save(path, o);
}

int rr_sandbox_load(struct rr *r, const char *id, struct rr_sandbox *sb)
{
	if (!rr_valid_id(id))
		return KB_ENOTFOUND;
	char path[PATH_MAX];
	sbpath(r, id, path, sizeof(path));
	json_t *o = load(path);
	if (o == NULL)
		return errno == ENOENT ? KB_ENOTFOUND : KB_ESYS;
	memset(sb, 0, sizeof(*sb));
	get_str(o, "id", sb->id, sizeof(sb->id));
	get_str(o, "uid", sb->uid, sizeof(sb->uid));
	get_str(o, "namespace", sb->ns, sizeof(sb->ns));
	get_str(o, "name", sb->name, sizeof(sb->name));
	get_str(o, "hostname", sb->hostname, sizeof(sb->hostname));
	get_str(o, "netns", sb->netns, sizeof(sb->netns));
	get_str(o, "ip", sb->ip, sizeof(sb->ip));
	sb->host_network = json_is_true(json_object_get(o, "hostNetwork"));
	sb->own_netns = json_is_true(json_object_get(o, "ownNetns"));
	sb->created_ms = json_integer_value(json_object_get(o, "created"));
	json_decref(o);
	return 0;
}

int rr_meta_save(struct rr *r, const struct rr_meta *m)
{
	char path[PATH_MAX];
	rr_cdir(r, m->id, "meta.json", path, sizeof(path));
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:I}",
		"id", m->id, "sandbox", m->sandbox_id, "podUID", m->pod_uid,
		"name", m->name, "image", m->image, "imageID", m->image_id,
		"logPath", m->log_path, "attempt", (json_int_t)m->attempt,
		"init", m->init, "created", (json_int_t)m->created_ms);
	if (o == NULL)
		return KB_ENOMEM;
	return save(path, o);
}

int rr_meta_load(struct rr *r, const char *id, struct rr_meta *m)
{
	if (!rr_valid_id(id))
		return KB_ENOTFOUND;
	char path[PATH_MAX];
	rr_cdir(r, id, "meta.json", path, sizeof(path));
	json_t *o = load(path);
	if (o == NULL)
		return errno == ENOENT ? KB_ENOTFOUND : KB_ESYS;
	memset(m, 0, sizeof(*m));
	get_str(o, "id", m->id, sizeof(m->id));
	get_str(o, "sandbox", m->sandbox_id, sizeof(m->sandbox_id));
	get_str(o, "podUID", m->pod_uid, sizeof(m->pod_uid));
	get_str(o, "name", m->name, sizeof(m->name));
	get_str(o, "image", m->image, sizeof(m->image));
	get_str(o, "imageID", m->image_id, sizeof(m->image_id));
	get_str(o, "logPath", m->log_path, sizeof(m->log_path));
	m->attempt =
	    (unsigned)json_integer_value(json_object_get(o, "attempt"));
	m->init = json_is_true(json_object_get(o, "init"));
	m->created_ms = json_integer_value(json_object_get(o, "created"));
	json_decref(o);
	return 0;
}

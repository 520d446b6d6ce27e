/* plugins/kubelet/prepare.c — what the kubelet resolves for one container
 * before the runtime creates it: its environment (env.c), its volume mounts
 * (volumes.c), and the pod's /etc/hosts and /etc/resolv.conf (dnsfiles.c),
 * mounted read-only unless the container mounts a volume there itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kubelet.h"

static void config_error(struct kl_ctr *c, const char *msg)
{
	snprintf(c->wait_reason, sizeof(c->wait_reason), "%s",
	    "CreateContainerConfigError");
	snprintf(c->wait_message, sizeof(c->wait_message), "%s", msg);
}

static bool mounted_at(const struct kl_ctr_config *cc, const char *path)
{
	for (size_t i = 0; i < cc->nmounts; i++)
		if (!strcmp(cc->mounts[i].container_path, path))
			return true;
	return false;
}

static int pod_file_mount(struct kubelet *kl, struct kl_pod *p,
    struct kl_ctr_config *cc, const char *file, const char *at)
{
	if (mounted_at(cc, at))
		return 0;
	char *host = kl_cat(kl->root, "/pods/", p->uid, "/", file, (char *)NULL);
	char *ctr = strdup(at);
	struct stat st;
	if (host == NULL || ctr == NULL || stat(host, &st) != 0) {
		free(host);
		free(ctr);
		return host && ctr ? 0 : KB_ENOMEM; /* none written: skip */
	}
	struct kb_rt_mount *m =
	    realloc(cc->mounts, (cc->nmounts + 1) * sizeof(*m));
	char **s = realloc(cc->strs, (cc->nstrs + 2) * sizeof(char *));
	if (m)
		cc->mounts = m;
	if (s)
		cc->strs = s;
	if (m == NULL || s == NULL) {
		free(host);
		free(ctr);
		return KB_ENOMEM;
	}
	cc->strs[cc->nstrs++] = host;
	cc->strs[cc->nstrs++] = ctr;
	cc->mounts[cc->nmounts++] = (struct kb_rt_mount){ .host_path = host,
		.container_path = ctr,
		.read_only = true };
	return 0;
}

static bool has_ref(const msgpack_object *a)
{
	for (uint32_t i = 0;
	     a && a->type == MSGPACK_OBJECT_ARRAY && i < a->via.array.size;
	     i++) {
		const msgpack_object *s = &a->via.array.ptr[i];
		if (s->type == MSGPACK_OBJECT_STR && s->via.str.size > 2 &&
		    memmem(s->via.str.ptr, s->via.str.size, "$(", 2))
			return true;
	}
	return false;
}

/* command and args with $(VAR) expanded from the container's env, as
 * the kubelet does before the runtime sees them. */
static int expand_args(const msgpack_object *spec, struct kl_ctr_config *cc)
{
	if ((!has_ref(kb_mp_get(spec, "command")) &&
		!has_ref(kb_mp_get(spec, "args"))) ||
	    spec->type != MSGPACK_OBJECT_MAP)
		return 0;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, spec->via.map.size);
	int rc = 0;
	for (uint32_t i = 0; i < spec->via.map.size; i++) {
		const msgpack_object *k = &spec->via.map.ptr[i].key;
		const msgpack_object *v = &spec->via.map.ptr[i].val;
		msgpack_pack_object(&pk, *k);
		if ((!kb_mp_is(k, "command") && !kb_mp_is(k, "args")) ||
		    v->type != MSGPACK_OBJECT_ARRAY) {
			msgpack_pack_object(&pk, *v);
			continue;
		}
		msgpack_pack_array(&pk, v->via.array.size);
		for (uint32_t j = 0; j < v->via.array.size; j++) {
			const msgpack_object *a = &v->via.array.ptr[j];
			char *x = a->type == MSGPACK_OBJECT_STR ?
			    kl_env_expand(cc->env, a->via.str.ptr,
				a->via.str.size) :
			    NULL;
			if (x == NULL && a->type == MSGPACK_OBJECT_STR)
				rc = KB_ENOMEM;
			if (x)
				kb_mp_pack_cstr(&pk, x);
			else
				msgpack_pack_object(&pk, *a);
			free(x);
		}
	}
	if (rc == 0) {
		cc->body = kb_body_from_sbuf(&sb);
		cc->container = cc->body ? kb_body_obj(cc->body) : NULL;
		if (cc->container == NULL)
			rc = KB_ENOMEM;
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

int kl_ctr_config(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *spec, struct kl_ctr *c, struct kl_ctr_config *out)
{
	char err[KB_RT_MESSAGE_MAX] = "";
	memset(out, 0, sizeof(*out));
	const msgpack_object *pod = p->pod;
	if (pod == NULL) {
		config_error(c, "the pod's spec is not known yet");
		return KB_ESTATE;
	}
	int rc = kl_env_build(kl, p, pod, spec, &out->env, err, sizeof(err));
	if (rc == 0)
		rc = expand_args(spec, out);
	if (rc == 0)
		rc = kl_volumes_mounts(kl, p, pod, spec, out, err, sizeof(err));
	/* A hollow sandbox has no such files: two stat(2)s of paths under
	 * the data dir were most of the rest of a hollow container's start. */
	if (rc == 0 && !p->no_pod_files)
		rc = pod_file_mount(kl, p, out, "hosts", "/etc/hosts");
	if (rc == 0 && !p->no_pod_files)
		rc = pod_file_mount(kl, p, out, "resolv.conf",
		    "/etc/resolv.conf");
	if (rc) {
		if (!err[0])
			snprintf(err, sizeof(err), "%s", kb_strerror(rc));
		/* Logged once per new reason, not every sync. */
		if (strcmp(c->wait_message, err) != 0)
			kb_warn(kl->ctx, "container config error",
			    "pod=%s container=%s err=\"%s\"", p->key, c->name,
			    err);
		config_error(c, err);
		kl_ctr_config_free(out);
		return rc;
	}
	return 0;
}

void kl_ctr_config_free(struct kl_ctr_config *cc)
{
	if (cc->body)
		kb_body_unref(cc->body);
	kl_env_free(cc->env);
	for (size_t i = 0; i < cc->nstrs; i++)
		free(cc->strs[i]);
	free(cc->strs);
	free(cc->mounts);
	memset(cc, 0, sizeof(*cc));
}

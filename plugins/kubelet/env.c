/* plugins/kubelet/env.c — a container's environment as Kubernetes builds
 * it: envFrom (ConfigMaps and Secrets, with prefix) first, then env in
 * order, each `value` with $(VAR) expanded from what came before ($$ for a
 * literal $), each `valueFrom` resolved: fieldRef, resourceFieldRef,
 * configMapKeyRef, secretKeyRef (`optional` honoured). A later name
 * replaces an earlier one. ConfigMaps and Secrets are read through the api
 * service, as this node. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

struct envv {
	char **v; /* "K=V" */
	size_t n, cap;
	bool oom;
};

static const char *lookup(const struct envv *e, const char *name, size_t nl)
{
	for (size_t i = e->n; i-- > 0;)
		if (!strncmp(e->v[i], name, nl) && e->v[i][nl] == '=')
			return e->v[i] + nl + 1;
	return NULL;
}

static void set(struct envv *e, const char *name, size_t nl, const char *val,
    size_t vl)
{
	char *kv = kl_strf("%.*s=%.*s", (int)nl, name, (int)vl, val);
	if (kv == NULL) {
		e->oom = true;
		return;
	}
	for (size_t i = 0; i < e->n; i++) {
		if (!strncmp(e->v[i], name, nl) && e->v[i][nl] == '=') {
			free(e->v[i]);
			e->v[i] = kv;
			return;
		}
	}
	if (e->n + 2 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		char **nv = realloc(e->v, cap * sizeof(char *));
		if (nv == NULL) {
			free(kv);
			e->oom = true;
			return;
		}
		e->v = nv;
		e->cap = cap;
	}
	e->v[e->n++] = kv;
	e->v[e->n] = NULL;
}

/* Kubernetes' expansion: $(NAME) of a defined variable is replaced, $$ is
 * a literal $, anything else stays as written. malloc'd. */
static char *expand(const struct envv *e, const char *s, size_t len)
{
	size_t cap = len + 1, off = 0;
	char *o = malloc(cap);
	for (size_t i = 0; o && i < len;) {
		const char *rep = NULL;
		size_t rl = 0, skip = 1;
		if (s[i] == '$' && i + 1 < len && s[i + 1] == '$') {
			rep = "$";
			rl = 1;
			skip = 2;
		} else if (s[i] == '$' && i + 1 < len && s[i + 1] == '(') {
			const char *close = memchr(s + i + 2, ')', len - i - 2);
			if (close) {
				size_t nl = (size_t)(close - (s + i + 2));
				const char *v = nl ? lookup(e, s + i + 2, nl) :
						     NULL;
				if (v) {
					rep = v;
					rl = strlen(v);
					skip = nl + 3;
				}
			}
		}
		if (rep == NULL) {
			rep = s + i;
			rl = 1;
		}
		if (off + rl + 1 > cap) {
			cap = (off + rl + 1) * 2;
			char *n = realloc(o, cap);
			if (n == NULL) {
				free(o);
				return NULL;
			}
			o = n;
		}
		memcpy(o + off, rep, rl);
		off += rl;
		i += skip;
	}
	if (o)
		o[off] = '\0';
	return o;
}

static int b64v(int c)
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

/* Standard base64 (padding optional, whitespace ignored). malloc'd. */
static char *b64dec(const char *s, size_t len, size_t *outlen)
{
	char *o = malloc(len / 4 * 3 + 4);
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;
	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=' || isspace((unsigned char)s[i]))
			continue;
		int v = b64v((unsigned char)s[i]);
		if (v < 0) {
			free(o);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	o[n] = '\0';
	*outlen = n;
	return o;
}

int kl_get_source(struct kubelet *kl, bool secret, const char *ns,
    const char *name, kb_msg **msg)
{
	*msg = NULL;
	int rc = kb_api_get(kl->ctx,
	    secret ? &KB_GVR_SECRETS : &KB_GVR_CONFIGMAPS, ns, name, msg);
	if (rc) {
		kb_msg_free(*msg);
		*msg = NULL;
	}
	return rc;
}

bool kl_source_value(const msgpack_object *obj, bool secret, const char *key,
    char **val, size_t *vlen)
{
	const msgpack_object *d = kb_mp_get(obj, "data");
	const msgpack_object *v = d ? kb_mp_key(d, key) : NULL;
	bool b64 = secret;
	if (v == NULL && !secret) {
		d = kb_mp_get(obj, "binaryData");
		v = d ? kb_mp_key(d, key) : NULL;
		b64 = true;
	}
	if (v == NULL)
		return false;
	const char *s;
	size_t len;
	if (v->type == MSGPACK_OBJECT_STR) {
		s = v->via.str.ptr;
		len = v->via.str.size;
	} else if (v->type == MSGPACK_OBJECT_BIN) {
		/* Already bytes (a decoded []byte field): take as is. */
		s = v->via.bin.ptr;
		len = v->via.bin.size;
		b64 = false;
	} else {
		return false;
	}
	if (b64) {
		*val = b64dec(s, len, vlen);
		if (*val == NULL) /* not base64: the API would not store it */
			return false;
	} else {
		*val = malloc(len + 1);
		if (*val == NULL)
			return false;
		memcpy(*val, s, len);
		(*val)[len] = '\0';
		*vlen = len;
	}
	return true;
}

static const char *kind_of(bool secret)
{
	return secret ? "Secret" : "ConfigMap";
}

/* The value of a {configMap,secret}KeyRef; *val NULL when optional and
 * missing. 0 or an error with err set. */
static int key_ref(struct kubelet *kl, const char *ns,
    const msgpack_object *ref, bool secret, char **val, size_t *vlen, char *err,
    size_t errlen)
{
	char *name = kb_mp_strdup(ref, "name");
	char *key = kb_mp_strdup(ref, "key");
	bool optional = false;
	kb_mp_bool(ref, "optional", &optional);
	kb_msg *m = NULL;
	int rc = 0;
	*val = NULL;
	if (name == NULL || key == NULL) {
		snprintf(err, errlen, "%s key reference without name or key",
		    kind_of(secret));
		rc = KB_EINVAL;
		goto out;
	}
	rc = kl_get_source(kl, secret, ns, name, &m);
	if (rc == KB_ENOTFOUND && optional) {
		rc = 0;
		goto out;
	}
	if (rc) {
		if (rc == KB_ENOTFOUND)
			snprintf(err, errlen, "%s \"%s\" not found",
			    secret ? "secret" : "configmap", name);
		else
			snprintf(err, errlen, "cannot read %s %s/%s: %s",
			    kind_of(secret), ns, name, kb_strerror(rc));
		goto out;
	}
	if (!kl_source_value(kb_msg_body(m), secret, key, val, vlen) &&
	    !optional) {
		snprintf(err, errlen, "couldn't find key %s in %s %s/%s", key,
		    kind_of(secret), ns, name);
		rc = KB_ENOTFOUND;
	}
out:
	kb_msg_free(m);
	free(name);
	free(key);
	return rc;
}

/* metadata.labels['k'] and metadata.annotations['k']. */
static bool map_field(const msgpack_object *pod, const char *path,
    const char *what, char **val)
{
	size_t wl = strlen(what);
	if (strncmp(path, what, wl) || path[wl] != '[')
		return false;
	const char *k = path + wl + 1;
	char q = *k;
	if (q != '\'' && q != '"')
		return false;
	const char *end = strchr(k + 1, q);
	if (end == NULL || end[1] != ']' || end[2])
		return false;
	char key[256];
	snprintf(key, sizeof(key), "%.*s", (int)(end - k - 1), k + 1);
	const msgpack_object *m = kb_mp_get(pod, what);
	const msgpack_object *v = m ? kb_mp_key(m, key) : NULL;
	*val = v && v->type == MSGPACK_OBJECT_STR ?
	    strndup(v->via.str.ptr, v->via.str.size) :
	    strdup("");
	return true;
}

static int field_ref(struct kubelet *kl, const struct kl_pod *p,
    const msgpack_object *pod, const msgpack_object *ref, char **val, char *err,
    size_t errlen)
{
	const char *path;
	size_t pl;
	*val = NULL;
	if (!kb_mp_str(ref, "fieldPath", &path, &pl) || pl > 300) {
		snprintf(err, errlen, "fieldRef without fieldPath");
		return KB_EINVAL;
	}
	char f[320];
	snprintf(f, sizeof(f), "%.*s", (int)pl, path);
	static const char *const plain[] = { "metadata.name",
		"metadata.namespace", "metadata.uid", "spec.nodeName",
		"spec.serviceAccountName", NULL };
	for (int i = 0; plain[i]; i++) {
		if (!strcmp(f, plain[i])) {
			char *v = kb_mp_strdup(pod, f);
			*val = v ? v : strdup("");
			return *val ? 0 : KB_ENOMEM;
		}
	}
	if (map_field(pod, f, "metadata.labels", val) ||
	    map_field(pod, f, "metadata.annotations", val))
		return *val ? 0 : KB_ENOMEM;
	if (!strcmp(f, "status.podIP") || !strcmp(f, "status.podIPs"))
		*val = strdup(p->ip);
	else if (!strcmp(f, "status.hostIP") || !strcmp(f, "status.hostIPs"))
		*val = strdup(kl->address);
	else {
		snprintf(err, errlen, "unsupported fieldPath: %s", f);
		return KB_EINVAL;
	}
	return *val ? 0 : KB_ENOMEM;
}

/* resourceFieldRef: limits.cpu / requests.cpu in whole cores (rounded up,
 * divisor 1), limits.memory / requests.memory in bytes; a missing limit is
 * the node's allocatable. */
static int resource_ref(struct kubelet *kl, const msgpack_object *spec,
    const msgpack_object *ref, char **val, char *err, size_t errlen)
{
	const char *r;
	size_t rl;
	if (!kb_mp_str(ref, "resource", &r, &rl) || rl > 60) {
		snprintf(err, errlen, "resourceFieldRef without resource");
		return KB_EINVAL;
	}
	char res[64], path[96];
	snprintf(res, sizeof(res), "%.*s", (int)rl, r);
	if (strcmp(res, "limits.cpu") && strcmp(res, "requests.cpu") &&
	    strcmp(res, "limits.memory") && strcmp(res, "requests.memory")) {
		snprintf(err, errlen, "unsupported resource: %s", res);
		return KB_EINVAL;
	}
	bool cpu = strstr(res, "cpu") != NULL;
	snprintf(path, sizeof(path), "resources.%s", res);
	const char *q;
	size_t ql;
	char qs[64];
	if (kb_mp_str(spec, path, &q, &ql) && ql < sizeof(qs))
		snprintf(qs, sizeof(qs), "%.*s", (int)ql, q);
	else
		snprintf(qs, sizeof(qs), "%s", cpu ? kl->cpu : kl->memory);
	if (cpu) {
		double c = strtod(qs, NULL);
		if (qs[strlen(qs) - 1] == 'm')
			c /= 1000.0;
		long long whole = (long long)c;
		if ((double)whole < c)
			whole++;
		*val = kl_strf("%lld", whole ? whole : 1);
	} else {
		int64_t bytes = 0;
		if (kb_conf_to_size(qs, &bytes) != 0)
			bytes = 0;
		*val = kl_strf("%lld", (long long)bytes);
	}
	return *val ? 0 : KB_ENOMEM;
}

static bool env_name_ok(const char *s, size_t n)
{
	if (n == 0 || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_-.", s[i]))
			return false;
	return true;
}

static int env_from(struct kubelet *kl, const char *ns,
    const msgpack_object *from, struct envv *e, char *err, size_t errlen)
{
	for (uint32_t i = 0; from && from->type == MSGPACK_OBJECT_ARRAY &&
	     i < from->via.array.size;
	     i++) {
		const msgpack_object *f = &from->via.array.ptr[i];
		const msgpack_object *ref = kb_mp_get(f, "configMapRef");
		bool secret = false;
		if (ref == NULL && (ref = kb_mp_get(f, "secretRef")) != NULL)
			secret = true;
		if (ref == NULL)
			continue;
		const char *pre = "";
		size_t prel = 0;
		kb_mp_str(f, "prefix", &pre, &prel);
		char *name = kb_mp_strdup(ref, "name");
		bool optional = false;
		kb_mp_bool(ref, "optional", &optional);
		kb_msg *m = NULL;
		int rc = name ? kl_get_source(kl, secret, ns, name, &m) :
				KB_EINVAL;
		if (rc == KB_ENOTFOUND && optional) {
			free(name);
			continue;
		}
		if (rc) {
			if (rc == KB_ENOTFOUND)
				snprintf(err, errlen, "%s \"%s\" not found",
				    secret ? "secret" : "configmap", name);
			else
				snprintf(err, errlen, "cannot read %s %s: %s",
				    kind_of(secret), name ? name : "(no name)",
				    kb_strerror(rc));
			free(name);
			return rc;
		}
		const msgpack_object *d = kb_mp_get(kb_msg_body(m), "data");
		for (uint32_t k = 0;
		     d && d->type == MSGPACK_OBJECT_MAP && k < d->via.map.size;
		     k++) {
			const msgpack_object *key = &d->via.map.ptr[k].key;
			if (key->type != MSGPACK_OBJECT_STR)
				continue;
			char kn[256];
			snprintf(kn, sizeof(kn), "%.*s", (int)key->via.str.size,
			    key->via.str.ptr);
			char *full = kl_strf("%.*s%s", (int)prel, pre, kn);
			char *val = NULL;
			size_t vl = 0;
			if (full && env_name_ok(full, strlen(full)) &&
			    kl_source_value(kb_msg_body(m), secret, kn, &val,
				&vl))
				set(e, full, strlen(full), val, vl);
			free(val);
			free(full);
		}
		kb_msg_free(m);
		free(name);
	}
	return 0;
}

int kl_env_build(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, const msgpack_object *spec, char ***out,
    char *err, size_t errlen)
{
	struct envv e = { 0 };
	*out = NULL;
	int rc =
	    env_from(kl, p->ns, kb_mp_get(spec, "envFrom"), &e, err, errlen);
	const msgpack_object *env = kb_mp_get(spec, "env");
	for (uint32_t i = 0; rc == 0 && env &&
	     env->type == MSGPACK_OBJECT_ARRAY && i < env->via.array.size;
	     i++) {
		const msgpack_object *ev = &env->via.array.ptr[i];
		const char *name, *val;
		size_t nl, vl;
		if (!kb_mp_str(ev, "name", &name, &nl) || nl == 0)
			continue;
		const msgpack_object *from = kb_mp_get(ev, "valueFrom");
		char *v = NULL;
		size_t len = 0;
		const msgpack_object *ref;
		if (from == NULL) {
			if (!kb_mp_str(ev, "value", &val, &vl)) {
				val = "";
				vl = 0;
			}
			v = expand(&e, val, vl);
			if (v == NULL)
				rc = KB_ENOMEM;
		} else if ((ref = kb_mp_get(from, "fieldRef")) != NULL) {
			rc = field_ref(kl, p, pod, ref, &v, err, errlen);
		} else if ((ref = kb_mp_get(from, "resourceFieldRef")) !=
		    NULL) {
			rc = resource_ref(kl, spec, ref, &v, err, errlen);
		} else if ((ref = kb_mp_get(from, "configMapKeyRef")) != NULL) {
			rc = key_ref(kl, p->ns, ref, false, &v, &len, err,
			    errlen);
			if (rc == 0 && v == NULL)
				continue; /* optional and missing: unset */
		} else if ((ref = kb_mp_get(from, "secretKeyRef")) != NULL) {
			rc = key_ref(kl, p->ns, ref, true, &v, &len, err,
			    errlen);
			if (rc == 0 && v == NULL)
				continue;
		} else {
			snprintf(err, errlen,
			    "env %.*s: valueFrom with no known source", (int)nl,
			    name);
			rc = KB_EINVAL;
		}
		if (rc == 0 && v)
			set(&e, name, nl, v, strlen(v));
		free(v);
	}
	if (rc == 0 && e.oom)
		rc = KB_ENOMEM;
	if (rc == 0 && e.v == NULL) {
		e.v = calloc(1, sizeof(char *));
		if (e.v == NULL)
			rc = KB_ENOMEM;
	}
	if (rc) {
		kl_env_free(e.v);
		return rc;
	}
	*out = e.v;
	return 0;
}

void kl_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

char *kl_env_expand(char *const *env, const char *s, size_t len)
{
	struct envv e = { .v = (char **)env };
	while (env && env[e.n])
		e.n++;
	return expand(&e, s, len);
}

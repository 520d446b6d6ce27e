/* plugins/ctrl-endpoints/svcpod.c — Services and the pods they select, as
 * the endpoints and endpointslice controllers both see them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcpod.h"

void sp_str(const msgpack_object *o, const char *path, char *buf, size_t len)
{
	const char *s;
	size_t n;
	buf[0] = '\0';
	if (len && kb_mp_str(o, path, &s, &n))
		snprintf(buf, len, "%.*s", (int)n, s);
}

bool sp_svc_selects_pods(const msgpack_object *svc)
{
	const msgpack_object *sel = kb_mp_get(svc, "spec.selector");
	return sel && sel->type == MSGPACK_OBJECT_MAP &&
	    sel->via.map.size > 0 &&
	    !kb_mp_streq(svc, "spec.type", "ExternalName");
}

bool sp_svc_headless(const msgpack_object *svc)
{
	return kb_mp_streq(svc, "spec.clusterIP", "None");
}

bool sp_svc_publish_not_ready(const msgpack_object *svc)
{
	bool b = false;
	return kb_mp_bool(svc, "spec.publishNotReadyAddresses", &b) && b;
}

static bool map_subset(const msgpack_object *sel, const msgpack_object *labels)
{
	for (uint32_t i = 0; i < sel->via.map.size; i++) {
		const msgpack_object *k = &sel->via.map.ptr[i].key;
		const msgpack_object *want = &sel->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			return false;
		const msgpack_object *v =
		    kb_mp_keyn(labels, k->via.str.ptr, k->via.str.size);
		if (v == NULL || !msgpack_object_equal(*v, *want))
			return false;
	}
	return true;
}

bool sp_svc_selects(const msgpack_object *svc, const msgpack_object *pod)
{
	if (!sp_svc_selects_pods(svc) ||
	    !ctrl_str_eq(svc, "metadata.namespace", pod, "metadata.namespace"))
		return false;
	const msgpack_object *labels = kb_mp_get(pod, "metadata.labels");
	if (labels == NULL || labels->type != MSGPACK_OBJECT_MAP)
		return false;
	return map_subset(kb_mp_get(svc, "spec.selector"), labels);
}

struct enq {
	struct ctrl *c;
	const msgpack_object *pod;
};

static void enqueue_one(void *arg, const msgpack_object *svc)
{
	struct enq *e = arg;
	if (sp_svc_selects(svc, e->pod))
		ctrl_enqueue_obj(e->c, svc);
}

void sp_enqueue_services(struct ctrl *c, struct kb_informer *svcs,
    const msgpack_object *pod)
{
	struct enq e = { c, pod };
	kb_informer_each(svcs, enqueue_one, &e);
}

static bool same(const msgpack_object *a, const msgpack_object *b,
    const char *path)
{
	const msgpack_object *x = kb_mp_get(a, path), *y = kb_mp_get(b, path);
	if (x == NULL || y == NULL)
		return x == y;
	return msgpack_object_equal(*x, *y);
}

void sp_pod_updated(struct ctrl *c, struct kb_informer *svcs,
    const msgpack_object *old, const msgpack_object *pod)
{
	if (old == pod)
		return; /* a resync: the services' own resync covers it */
	static const char *const fields[] = { "status.podIP", "status.podIPs",
		"status.phase", "spec.nodeName", "spec.hostname",
		"spec.subdomain", "metadata.deletionTimestamp",
		"spec.containers", "spec.initContainers", "metadata.uid" };
	bool labels = same(old, pod, "metadata.labels");
	bool changed = !labels || ctrl_pod_ready(old) != ctrl_pod_ready(pod);
	for (size_t i = 0; !changed && i < sizeof(fields) / sizeof(*fields);
	     i++)
		changed = !same(old, pod, fields[i]);
	if (!changed)
		return;
	if (!labels)
		sp_enqueue_services(c, svcs, old);
	sp_enqueue_services(c, svcs, pod);
}

bool sp_pod_terminal(const msgpack_object *pod)
{
	return kb_mp_streq(pod, "status.phase", "Succeeded") ||
	    kb_mp_streq(pod, "status.phase", "Failed");
}

static bool is_ipv4(const char *s, size_t n)
{
	return n > 0 && n < SP_IP && memchr(s, ':', n) == NULL &&
	    memchr(s, '.', n) != NULL;
}

bool sp_pod_ipv4(const msgpack_object *pod, char *buf, size_t len)
{
	const char *s;
	size_t n;
	if (kb_mp_str(pod, "status.podIP", &s, &n) && is_ipv4(s, n)) {
		snprintf(buf, len, "%.*s", (int)n, s);
		return true;
	}
	const msgpack_object *ips = kb_mp_get(pod, "status.podIPs");
	for (uint32_t i = 0; ips && ips->type == MSGPACK_OBJECT_ARRAY &&
	     i < ips->via.array.size;
	     i++) {
		if (kb_mp_str(&ips->via.array.ptr[i], "ip", &s, &n) &&
		    is_ipv4(s, n)) {
			snprintf(buf, len, "%.*s", (int)n, s);
			return true;
		}
	}
	return false;
}

bool sp_pod_hostname(const msgpack_object *pod, const msgpack_object *svc,
    char *buf, size_t len)
{
	const char *h;
	size_t hl;
	if (!kb_mp_str(pod, "spec.hostname", &h, &hl) || hl == 0 ||
	    !ctrl_str_eq(pod, "spec.subdomain", svc, "metadata.name") ||
	    !ctrl_str_eq(pod, "metadata.namespace", svc, "metadata.namespace"))
		return false;
	snprintf(buf, len, "%.*s", (int)hl, h);
	return true;
}

static bool named_in(const msgpack_object *ctrs, const char *name,
    const char *proto, bool sidecars_only, int64_t *port)
{
	for (uint32_t i = 0; ctrs && ctrs->type == MSGPACK_OBJECT_ARRAY &&
	     i < ctrs->via.array.size;
	     i++) {
		const msgpack_object *c = &ctrs->via.array.ptr[i];
		if (sidecars_only && !kb_mp_streq(c, "restartPolicy", "Always"))
			continue;
		const msgpack_object *ports = kb_mp_key(c, "ports");
		for (uint32_t j = 0;
		     ports && ports->type == MSGPACK_OBJECT_ARRAY &&
		     j < ports->via.array.size;
		     j++) {
			const msgpack_object *p = &ports->via.array.ptr[j];
			char pproto[16];
			sp_str(p, "protocol", pproto, sizeof(pproto));
			if (!pproto[0])
				strcpy(pproto, "TCP");
			if (kb_mp_streq(p, "name", name) &&
			    !strcmp(pproto, proto) &&
			    kb_mp_int(p, "containerPort", port))
				return true;
		}
	}
	return false;
}

bool sp_resolve_port(const msgpack_object *pod, const msgpack_object *svcport,
    struct sp_port *out)
{
	memset(out, 0, sizeof(*out));
	sp_str(svcport, "name", out->name, sizeof(out->name));
	sp_str(svcport, "protocol", out->proto, sizeof(out->proto));
	if (!out->proto[0])
		strcpy(out->proto, "TCP");
	const char *app;
	size_t al;
	if (kb_mp_str(svcport, "appProtocol", &app, &al)) {
		snprintf(out->app, sizeof(out->app), "%.*s", (int)al, app);
		out->has_app = true;
	}
	const msgpack_object *tp = kb_mp_key(svcport, "targetPort");
	int64_t n = 0;
	if (tp == NULL || tp->type == MSGPACK_OBJECT_NIL)
		return kb_mp_int(svcport, "port", &out->port) && out->port > 0;
	if (kb_mp_int(tp, NULL, &n)) {
		out->port = n;
		return n > 0 && n <= 65535;
	}
	char name[SP_PORTNAME];
	const char *s;
	size_t sl;
	if (!kb_mp_str(tp, NULL, &s, &sl) || sl == 0 || sl >= sizeof(name))
		return false;
	snprintf(name, sizeof(name), "%.*s", (int)sl, s);
	if (named_in(kb_mp_get(pod, "spec.containers"), name, out->proto, false,
		&n) ||
	    named_in(kb_mp_get(pod, "spec.initContainers"), name, out->proto,
		true, &n)) {
		out->port = n;
		return n > 0 && n <= 65535;
	}
	return false;
}

int sp_port_cmp(const struct sp_port *a, const struct sp_port *b)
{
	int c = strcmp(a->name, b->name);
	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if ((c = strcmp(a->proto, b->proto)))
		return c;
	if (a->has_app != b->has_app)
		return a->has_app ? 1 : -1;
	return strcmp(a->app, b->app);
}

/* --- string maps --------------------------------------------------------------- */

struct kv {
	const char *k, *v;
	uint32_t kl, vl;
};

static int kv_cmp(const void *x, const void *y)
{
	const struct kv *a = x, *b = y;
	int c = memcmp(a->k, b->k, a->kl < b->kl ? a->kl : b->kl);
	return c ? c : (int)a->kl - (int)b->kl;
}

static bool key_in(const msgpack_object *key, const char *const *list,
    size_t step)
{
	for (size_t i = 0; list && list[i]; i += step)
		if (key->via.str.size == strlen(list[i]) &&
		    !memcmp(key->via.str.ptr, list[i], key->via.str.size))
			return true;
	return false;
}

void sp_pack_strmap(msgpack_packer *pk, const msgpack_object *m,
    const char *const *drop, const char *const *add)
{
	uint32_t n = m && m->type == MSGPACK_OBJECT_MAP ? m->via.map.size : 0;
	size_t nadd = 0;
	while (add && add[2 * nadd])
		nadd++;
	struct kv *v = calloc(n + nadd + 1, sizeof(*v));
	size_t k = 0;
	for (uint32_t i = 0; v && i < n; i++) {
		const msgpack_object *key = &m->via.map.ptr[i].key,
				     *val = &m->via.map.ptr[i].val;
		if (key->type != MSGPACK_OBJECT_STR ||
		    val->type != MSGPACK_OBJECT_STR || key_in(key, drop, 1) ||
		    key_in(key, add, 2))
			continue;
		v[k++] = (struct kv){ key->via.str.ptr, val->via.str.ptr,
			key->via.str.size, val->via.str.size };
	}
	for (size_t i = 0; v && i < nadd; i++)
		v[k++] = (struct kv){ add[2 * i], add[2 * i + 1],
			(uint32_t)strlen(add[2 * i]),
			(uint32_t)strlen(add[2 * i + 1]) };
	if (v)
		qsort(v, k, sizeof(*v), kv_cmp);
	msgpack_pack_map(pk, (uint32_t)k);
	for (size_t i = 0; i < k; i++)
		kb_mp_pack(pk, "S:S", v[i].k, (size_t)v[i].kl, v[i].v,
		    (size_t)v[i].vl);
	free(v);
}

/* plugins/proxy/model.c — Services and EndpointSlices to the desired state
 * of this node (struct kb_px_service), as kube-proxy's ServiceChangeTracker
 * and EndpointsChangeTracker compute it: only ready endpoints, targetPort
 * by the slice's port name, traffic policies, session affinity. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

struct px_block {
	struct px_block *next;
	size_t used, cap;
	char data[];
};

void *px_alloc(struct px_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct px_block *b = a->head;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->cap = cap;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

char *px_strdup(struct px_arena *a, const char *s, size_t n)
{
	char *d = px_alloc(a, n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void px_arena_free(struct px_arena *a)
{
	while (a->head) {
		struct px_block *n = a->head->next;
		free(a->head);
		a->head = n;
	}
}

/* --- endpoints, gathered per service from every slice ------------------ */

struct ep_rec {
	char ip[INET_ADDRSTRLEN];
	char pname[64];
	int proto;
	uint16_t port;
	bool local;
};

struct ep_list {
	struct ep_rec *v;
	size_t n, cap;
};

struct gather {
	struct proxy *px;
	struct kb_strmap by_svc; /* "ns/svc" -> struct ep_list */
	int err;
};

static int proto_of(const msgpack_object *o, const char *path)
{
	const char *s;
	size_t n;
	if (!kb_mp_str(o, path, &s, &n) || (n == 3 && !memcmp(s, "TCP", 3)))
		return KB_PX_TCP;
	if (n == 3 && !memcmp(s, "UDP", 3))
		return KB_PX_UDP;
	if (n == 4 && !memcmp(s, "SCTP", 4))
		return KB_PX_SCTP;
	return 0;
}

static void copy_str(char *dst, size_t cap, const msgpack_object *o,
    const char *path)
{
	const char *s;
	size_t n;
	dst[0] = '\0';
	if (kb_mp_str(o, path, &s, &n) && n < cap) {
		memcpy(dst, s, n);
		dst[n] = '\0';
	}
}

static bool ep_ready(const msgpack_object *ep)
{
	bool b;
	/* Kubernetes: an unset ready means ready; terminating never is. */
	if (kb_mp_bool(ep, "conditions.terminating", &b) && b)
		return false;
	if (kb_mp_bool(ep, "conditions.ready", &b))
		return b;
	return true;
}

static void gather_slice(void *arg, const msgpack_object *sl)
{
	struct gather *g = arg;
	if (g->err)
		return;
	const char *svc, *ns;
	size_t svcn, nsn;
	if (!kb_mp_str(sl, "metadata.labels.kubernetes\\.io/service-name", &svc,
		&svcn) ||
	    !kb_mp_str(sl, "metadata.namespace", &ns, &nsn) || svcn == 0 ||
	    svcn + nsn > 300)
		return;
	const char *at;
	size_t atn;
	if (kb_mp_str(sl, "addressType", &at, &atn) &&
	    !(atn == 4 && !memcmp(at, "IPv4", 4)))
		return;
	char key[320];
	snprintf(key, sizeof(key), "%.*s/%.*s", (int)nsn, ns, (int)svcn, svc);
	struct ep_list *l = kb_strmap_get(&g->by_svc, key);
	if (l == NULL) {
		l = calloc(1, sizeof(*l));
		if (l == NULL || kb_strmap_put(&g->by_svc, key, l, NULL)) {
			free(l);
			g->err = KB_ENOMEM;
			return;
		}
	}
	const msgpack_object *eps = kb_mp_get(sl, "endpoints");
	const msgpack_object *ports = kb_mp_get(sl, "ports");
	if (eps == NULL || eps->type != MSGPACK_OBJECT_ARRAY || ports == NULL ||
	    ports->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < eps->via.array.size; i++) {
		const msgpack_object *ep = &eps->via.array.ptr[i];
		if (!ep_ready(ep))
			continue;
		char ip[INET_ADDRSTRLEN];
		struct in_addr a;
		copy_str(ip, sizeof(ip), ep, "addresses[0]");
		if (inet_pton(AF_INET, ip, &a) != 1)
			continue;
		bool local = kb_mp_streq(ep, "nodeName", g->px->node);
		for (uint32_t j = 0; j < ports->via.array.size; j++) {
			const msgpack_object *p = &ports->via.array.ptr[j];
			int64_t port;
			if (!kb_mp_int(p, "port", &port) || port < 1 ||
			    port > 65535)
				continue;
			if (l->n == l->cap) {
				size_t cap = l->cap ? l->cap * 2 : 8;
				struct ep_rec *v =
				    realloc(l->v, cap * sizeof(*v));
				if (v == NULL) {
					g->err = KB_ENOMEM;
					return;
				}
				l->v = v;
				l->cap = cap;
			}
			struct ep_rec *r = &l->v[l->n++];
			memcpy(r->ip, ip, sizeof(ip));
			copy_str(r->pname, sizeof(r->pname), p, "name");
			r->proto = proto_of(p, "protocol");
			r->port = (uint16_t)port;
			r->local = local;
		}
	}
}

static void ep_list_free(void *v)
{
	struct ep_list *l = v;
	free(l->v);
	free(l);
}

/* --- services ---------------------------------------------------------- */

struct svc_vec {
	struct gather *g;
	struct px_model *m;
	size_t cap;
	int err;
};

static int ep_cmp(const void *a, const void *b)
{
	const struct kb_px_endpoint *x = a, *y = b;
	int c = strcmp(x->ip, y->ip);
	return c ? c : (int)x->port - (int)y->port;
}

/* The endpoints of one service port: ready, its name and protocol, deduped
 * (slices may overlap while the controller moves endpoints), sorted. */
static int port_eps(struct px_arena *a, const struct ep_list *l,
    const char *pname, int proto, bool local_only,
    const struct kb_px_endpoint **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	if (l == NULL || l->n == 0)
		return 0;
	struct kb_px_endpoint *v = px_alloc(a, l->n * sizeof(*v));
	if (v == NULL)
		return KB_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct ep_rec *r = &l->v[i];
		if (r->proto != proto || strcmp(r->pname, pname) ||
		    (local_only && !r->local))
			continue;
		v[n].ip = px_strdup(a, r->ip, strlen(r->ip));
		if (v[n].ip == NULL)
			return KB_ENOMEM;
		v[n].port = r->port;
		v[n].local = r->local;
		n++;
	}
	qsort(v, n, sizeof(*v), ep_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || ep_cmp(&v[k - 1], &v[i]))
			v[k++] = v[i];
	*out = v;
	*nout = k;
	return 0;
}

static void build_svc(void *arg, const msgpack_object *o)
{
	struct svc_vec *sv = arg;
	struct px_model *m = sv->m;
	struct px_arena *a = &m->arena;
	if (sv->err)
		return;
	const char *ip;
	size_t ipn;
	struct in_addr in;
	char ipbuf[INET_ADDRSTRLEN];
	/* Headless (None), ExternalName and not yet allocated: nothing to do. */
	if (!kb_mp_str(o, "spec.clusterIP", &ip, &ipn) || ipn == 0 ||
	    ipn >= sizeof(ipbuf))
		return;
	memcpy(ipbuf, ip, ipn);
	ipbuf[ipn] = '\0';
	if (inet_pton(AF_INET, ipbuf, &in) != 1)
		return;
	char key[320];
	if (kb_object_key(o, key, sizeof(key)) == NULL)
		return;
	if (m->nsvcs == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 64;
		struct kb_px_service *v = realloc(m->svcs, cap * sizeof(*v));
		if (v == NULL) {
			sv->err = KB_ENOMEM;
			return;
		}
		m->svcs = v;
		sv->cap = cap;
	}
	struct kb_px_service *s = &m->svcs[m->nsvcs];
	memset(s, 0, sizeof(*s));
	s->key = px_strdup(a, key, strlen(key));
	s->cluster_ip = px_strdup(a, ipbuf, ipn);
	s->affinity = kb_mp_streq(o, "spec.sessionAffinity", "ClientIP");
	int64_t t = 10800;
	kb_mp_int(o, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", &t);
	s->affinity_timeout_s = t > 0 && t <= 86400 ? (uint32_t)t : 10800;
	bool itp_local = kb_mp_streq(o, "spec.internalTrafficPolicy", "Local");
	bool etp_local = kb_mp_streq(o, "spec.externalTrafficPolicy", "Local");
	const struct ep_list *l = kb_strmap_get(&sv->g->by_svc, key);
	const msgpack_object *ports = kb_mp_get(o, "spec.ports");
	size_t np = ports && ports->type == MSGPACK_OBJECT_ARRAY ?
	    ports->via.array.size :
	    0;
	struct kb_px_port *pv = np ? px_alloc(a, np * sizeof(*pv)) : NULL;
	if (s->key == NULL || s->cluster_ip == NULL || (np && pv == NULL)) {
		sv->err = KB_ENOMEM;
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < np; i++) {
		const msgpack_object *p = &ports->via.array.ptr[i];
		int64_t port, nodeport = 0;
		int proto = proto_of(p, "protocol");
		if (!kb_mp_int(p, "port", &port) || port < 1 || port > 65535 ||
		    proto == 0)
			continue;
		if (!kb_mp_int(p, "nodePort", &nodeport) || nodeport < 1 ||
		    nodeport > 65535)
			nodeport = 0;
		/* a port twice would be a duplicate map key in every backend:
		 * the API rejects it, and so does the proxy if one slips by */
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			if (pv[j].proto == proto && pv[j].port == port)
				dup = true;
		if (dup)
			continue;
		char pname[64];
		copy_str(pname, sizeof(pname), p, "name");
		struct kb_px_port *q = &pv[k];
		q->name = px_strdup(a, pname, strlen(pname));
		q->proto = proto;
		q->port = (uint16_t)port;
		q->node_port = (uint16_t)nodeport;
		const struct kb_px_endpoint *all, *loc = NULL;
		size_t nall, nloc = 0;
		int rc = port_eps(a, l, pname, proto, false, &all, &nall);
		if (rc == 0 && (itp_local || (etp_local && nodeport)))
			rc = port_eps(a, l, pname, proto, true, &loc, &nloc);
		if (rc || q->name == NULL) {
			sv->err = KB_ENOMEM;
			return;
		}
		q->eps = itp_local ? loc : all;
		q->neps = itp_local ? nloc : nall;
		q->node_eps = etp_local ? loc : all;
		q->nnode_eps = etp_local ? nloc : nall;
		if (!nodeport) {
			q->node_eps = NULL;
			q->nnode_eps = 0;
		}
		k++;
	}
	s->ports = pv;
	s->nports = k;
	m->nsvcs++;
}

static int svc_cmp(const void *a, const void *b)
{
	const struct kb_px_service *x = a, *y = b;
	return strcmp(x->key, y->key);
}

int px_model_build(struct proxy *px, struct px_model *m)
{
	memset(m, 0, sizeof(*m));
	struct gather g = { .px = px };
	kb_informer_each(px->slice_inf, gather_slice, &g);
	struct svc_vec sv = { .g = &g, .m = m };
	if (g.err == 0)
		kb_informer_each(px->svc_inf, build_svc, &sv);
	kb_strmap_clear(&g.by_svc, ep_list_free);
	if (g.err || sv.err) {
		px_model_free(m);
		return KB_ENOMEM;
	}
	if (m->nsvcs)
		qsort(m->svcs, m->nsvcs, sizeof(*m->svcs), svc_cmp);
	return 0;
}

void px_model_free(struct px_model *m)
{
	free(m->svcs);
	px_arena_free(&m->arena);
	memset(m, 0, sizeof(*m));
}

/* --- rendering, for change detection ----------------------------------- */

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		if (b->oom)
			return;
		va_start(ap, fmt);
		int w = vsnprintf(b->p ? b->p + b->n : NULL,
		    b->p ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (w < 0) {
			b->oom = true;
			return;
		}
		if (b->p && (size_t)w < b->cap - b->n) {
			b->n += (size_t)w;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)w;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void render_eps(struct sbuf *b, const struct kb_px_endpoint *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_add(b, "%s:%u%s,", e[i].ip, e[i].port,
		    e[i].local ? "L" : "");
}

char *px_render(const struct kb_px_service *s)
{
	struct sbuf b = { 0 };
	sb_add(&b, "%s|%d|%u", s->cluster_ip, s->affinity,
	    s->affinity_timeout_s);
	for (size_t i = 0; i < s->nports; i++) {
		const struct kb_px_port *p = &s->ports[i];
		sb_add(&b, "|%s/%d/%u/%u=", p->name, p->proto, p->port,
		    p->node_port);
		render_eps(&b, p->eps, p->neps);
		sb_add(&b, "%s", p->node_eps == p->eps ? "=same" : "=");
		if (p->node_eps != p->eps)
			render_eps(&b, p->node_eps, p->nnode_eps);
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* plugins/ctrl-endpoints/subsets.c — Endpoints subsets: addresses and
 * ports collected pair by pair, then repacked as Kubernetes'
 * RepackSubsets does (ports offered by the same set of addresses share a
 * subset), truncated at capacity, and packed in one canonical order so that
 * "has anything changed" is a byte comparison. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epc.h"

void ep_set_free(struct ep_set *s)
{
	free(s->addrs);
	free(s->ports);
	free(s->pairs);
	memset(s, 0, sizeof(*s));
}

static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 16;
	void *p = realloc(*arr, c * size);
	if (p == NULL)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

long ep_set_addr(struct ep_set *s, const struct ep_addr *a)
{
	if (!grow((void **)&s->addrs, &s->capa, s->na, sizeof(*s->addrs)))
		return -1;
	s->addrs[s->na] = *a;
	return (long)s->na++;
}

long ep_set_port(struct ep_set *s, const struct sp_port *p)
{
	for (size_t i = 0; i < s->np; i++)
		if (sp_port_cmp(&s->ports[i], p) == 0)
			return (long)i;
	if (!grow((void **)&s->ports, &s->capp, s->np, sizeof(*s->ports)))
		return -2;
	s->ports[s->np] = *p;
	return (long)s->np++;
}

int ep_set_pair(struct ep_set *s, long a, long p, bool ready)
{
	if (a < 0 || p < -1)
		return KB_ENOMEM;
	if (!grow((void **)&s->pairs, &s->cappairs, s->npairs,
		sizeof(*s->pairs)))
		return KB_ENOMEM;
	s->pairs[s->npairs++] = (struct ep_pair){ (size_t)a, p, ready };
	return 0;
}

/* --- reading an existing object ------------------------------------------------ */

static void parse_addr(const msgpack_object *o, struct ep_addr *a)
{
	memset(a, 0, sizeof(*a));
	sp_str(o, "ip", a->ip, sizeof(a->ip));
	sp_str(o, "nodeName", a->node, sizeof(a->node));
	sp_str(o, "hostname", a->host, sizeof(a->host));
	const msgpack_object *ref = kb_mp_key(o, "targetRef");
	if (ref && ref->type == MSGPACK_OBJECT_MAP) {
		a->has_ref = true;
		sp_str(ref, "namespace", a->ns, sizeof(a->ns));
		sp_str(ref, "name", a->name, sizeof(a->name));
		sp_str(ref, "uid", a->uid, sizeof(a->uid));
	}
}

static void parse_port(const msgpack_object *o, struct sp_port *p)
{
	memset(p, 0, sizeof(*p));
	sp_str(o, "name", p->name, sizeof(p->name));
	sp_str(o, "protocol", p->proto, sizeof(p->proto));
	if (!p->proto[0])
		strcpy(p->proto, "TCP");
	const char *s;
	size_t n;
	if (kb_mp_str(o, "appProtocol", &s, &n)) {
		snprintf(p->app, sizeof(p->app), "%.*s", (int)n, s);
		p->has_app = true;
	}
	kb_mp_int(o, "port", &p->port);
}

int ep_set_parse(struct ep_set *s, const msgpack_object *subsets)
{
	static const char *const lists[] = { "addresses", "notReadyAddresses" };
	for (uint32_t i = 0; subsets && subsets->type == MSGPACK_OBJECT_ARRAY &&
	     i < subsets->via.array.size;
	     i++) {
		const msgpack_object *ss = &subsets->via.array.ptr[i];
		const msgpack_object *ports = kb_mp_key(ss, "ports");
		uint32_t np = ports && ports->type == MSGPACK_OBJECT_ARRAY ?
		    ports->via.array.size :
		    0;
		long pidx[128];
		if (np > 128)
			np = 128;
		for (uint32_t j = 0; j < np; j++) {
			struct sp_port p;
			parse_port(&ports->via.array.ptr[j], &p);
			if ((pidx[j] = ep_set_port(s, &p)) < -1)
				return KB_ENOMEM;
		}
		for (int l = 0; l < 2; l++) {
			const msgpack_object *arr = kb_mp_key(ss, lists[l]);
			for (uint32_t k = 0;
			     arr && arr->type == MSGPACK_OBJECT_ARRAY &&
			     k < arr->via.array.size;
			     k++) {
				struct ep_addr a;
				parse_addr(&arr->via.array.ptr[k], &a);
				long ai = ep_set_addr(s, &a);
				for (uint32_t j = 0; j < (np ? np : 1); j++) {
					int rc = ep_set_pair(s, ai,
					    np ? pidx[j] : -1, l == 0);
					if (rc)
						return rc;
				}
			}
		}
	}
	return 0;
}

/* --- repacking ------------------------------------------------------------------- */

static int addr_cmp(const struct ep_addr *a, const struct ep_addr *b)
{
	int c;
	if ((c = strcmp(a->ip, b->ip)) || (c = strcmp(a->uid, b->uid)) ||
	    (c = strcmp(a->ns, b->ns)) || (c = strcmp(a->name, b->name)) ||
	    (c = strcmp(a->node, b->node)) || (c = strcmp(a->host, b->host)))
		return c;
	return (int)a->has_ref - (int)b->has_ref;
}

static int port_idx_cmp(const struct ep_set *s, long a, long b)
{
	if (a == b)
		return 0;
	if (a < 0 || b < 0)
		return a < 0 ? -1 : 1;
	return sp_port_cmp(&s->ports[a], &s->ports[b]);
}

static int pair_cmp(const void *x, const void *y, void *arg)
{
	const struct ep_set *s = arg;
	const struct ep_pair *a = x, *b = y;
	int c = port_idx_cmp(s, a->p, b->p);
	return c ? c : addr_cmp(&s->addrs[a->a], &s->addrs[b->a]);
}

struct sub {
	size_t start, end; /* its addresses: pairs[start..end) */
	long *ports;
	size_t nports;
	size_t nready, nnot;
};

static bool same_addrs(const struct ep_set *s, const struct ep_pair *pairs,
    const struct sub *x, size_t start, size_t end)
{
	if (x->end - x->start != end - start)
		return false;
	for (size_t i = 0; i < end - start; i++) {
		const struct ep_pair *a = &pairs[x->start + i],
				     *b = &pairs[start + i];
		if (a->ready != b->ready ||
		    addr_cmp(&s->addrs[a->a], &s->addrs[b->a]))
			return false;
	}
	return true;
}

static void pack_addr(msgpack_packer *pk, const struct ep_addr *a)
{
	msgpack_pack_map(pk, 1 + !!a->host[0] + !!a->node[0] + a->has_ref);
	kb_mp_pack(pk, "s:s", "ip", a->ip);
	if (a->host[0])
		kb_mp_pack(pk, "s:s", "hostname", a->host);
	if (a->node[0])
		kb_mp_pack(pk, "s:s", "nodeName", a->node);
	if (a->has_ref)
		kb_mp_pack(pk, "s:{s:s, s:s, s:s, s:s}", "targetRef", "kind",
		    "Pod", "namespace", a->ns, "name", a->name, "uid", a->uid);
}

static void pack_port(msgpack_packer *pk, const struct sp_port *p)
{
	msgpack_pack_map(pk, 2 + !!p->name[0] + p->has_app);
	if (p->name[0])
		kb_mp_pack(pk, "s:s", "name", p->name);
	kb_mp_pack(pk, "s:I, s:s", "port", p->port, "protocol", p->proto);
	if (p->has_app)
		kb_mp_pack(pk, "s:s", "appProtocol", p->app);
}

struct packed {
	msgpack_sbuffer sb;
};

static int packed_cmp(const void *x, const void *y)
{
	const struct packed *a = x, *b = y;
	if (a->sb.size != b->sb.size)
		return a->sb.size < b->sb.size ? -1 : 1;
	return memcmp(a->sb.data, b->sb.data, a->sb.size);
}

static void pack_sub(msgpack_packer *pk, const struct ep_set *s,
    const struct ep_pair *pairs, const struct sub *x)
{
	msgpack_pack_map(pk, !!x->nready + !!x->nnot + !!x->nports);
	for (int ready = 1; ready >= 0; ready--) {
		if (!(ready ? x->nready : x->nnot))
			continue;
		kb_mp_pack_cstr(pk, ready ? "addresses" : "notReadyAddresses");
		msgpack_pack_array(pk, ready ? x->nready : x->nnot);
		for (size_t i = x->start; i < x->end; i++)
			if (pairs[i].ready == (bool)ready)
				pack_addr(pk, &s->addrs[pairs[i].a]);
	}
	if (x->nports) {
		kb_mp_pack_cstr(pk, "ports");
		msgpack_pack_array(pk, x->nports);
		for (size_t i = 0; i < x->nports; i++)
			pack_port(pk, &s->ports[x->ports[i]]);
	}
}

/* Keep at most max addresses, ready ones first, each subset its share
 * (rounded up), as Kubernetes' truncateEndpoints; into a new set. */
static int truncate_into(const struct ep_set *s, const struct ep_pair *pairs,
    const struct sub *subs, size_t nsub, size_t max, struct ep_set *out)
{
	size_t total_ready = 0, total_not = 0;
	for (size_t i = 0; i < nsub; i++) {
		total_ready += subs[i].nready;
		total_not += subs[i].nnot;
	}
	bool cut_ready = total_ready > max;
	size_t budget = cut_ready ? max : max - total_ready;
	size_t left = budget, of = cut_ready ? total_ready : total_not;
	for (size_t i = 0; i < nsub; i++) {
		const struct sub *x = &subs[i];
		size_t n = cut_ready ? x->nready : x->nnot;
		size_t keep = of ?
		    (size_t)ceil((double)n / (double)of * (double)budget) :
		    0;
		if (keep > left)
			keep = left;
		left -= keep;
		size_t kept_ready = 0, kept_not = 0;
		for (size_t j = x->start; j < x->end; j++) {
			bool r = pairs[j].ready;
			if (r && cut_ready && kept_ready >= keep)
				continue;
			if (!r && (cut_ready || kept_not >= keep))
				continue;
			kept_ready += r;
			kept_not += !r;
			long a = ep_set_addr(out, &s->addrs[pairs[j].a]);
			for (size_t k = 0; k < (x->nports ? x->nports : 1);
			     k++) {
				long p = x->nports ?
				    ep_set_port(out, &s->ports[x->ports[k]]) :
				    -1;
				int rc = ep_set_pair(out, a, p, r);
				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

int ep_set_pack(const struct ep_set *s, msgpack_packer *pk, size_t max,
    bool *truncated)
{
	int rc = 0;
	size_t n = s->npairs, nsub = 0;
	struct ep_pair *pairs = malloc((n ? n : 1) * sizeof(*pairs));
	/* at most one subset per distinct port (and one for no port) */
	size_t w = s->np + 1;
	struct sub *subs = calloc(w, sizeof(*subs));
	long *portbuf = malloc(w * w * sizeof(*portbuf));
	if (truncated)
		*truncated = false;
	if (pairs == NULL || subs == NULL || portbuf == NULL) {
		rc = KB_ENOMEM;
		goto out;
	}
	if (n)
		memcpy(pairs, s->pairs, n * sizeof(*pairs));
	qsort_r(pairs, n, sizeof(*pairs), pair_cmp, (void *)s);
	/* one address once per port; ready wins */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && pairs[m - 1].p == pairs[i].p &&
		    !addr_cmp(&s->addrs[pairs[m - 1].a],
			&s->addrs[pairs[i].a])) {
			pairs[m - 1].ready |= pairs[i].ready;
			continue;
		}
		pairs[m++] = pairs[i];
	}
	/* each port's address set; equal sets share a subset */
	for (size_t i = 0; i < m;) {
		size_t j = i;
		while (j < m && pairs[j].p == pairs[i].p)
			j++;
		struct sub *x = NULL;
		for (size_t k = 0; k < nsub && x == NULL; k++)
			if (same_addrs(s, pairs, &subs[k], i, j))
				x = &subs[k];
		if (x == NULL) {
			x = &subs[nsub++];
			x->start = i;
			x->end = j;
			x->ports = portbuf + (nsub - 1) * w;
			for (size_t k = i; k < j; k++) {
				x->nready += pairs[k].ready;
				x->nnot += !pairs[k].ready;
			}
		}
		if (pairs[i].p >= 0)
			x->ports[x->nports++] = pairs[i].p;
		i = j;
	}
	size_t total = 0;
	for (size_t i = 0; i < nsub; i++)
		total += subs[i].nready + subs[i].nnot;
	if (total > max) {
		struct ep_set cut = { 0 };
		rc = truncate_into(s, pairs, subs, nsub, max, &cut);
		if (rc == 0)
			rc = ep_set_pack(&cut, pk, (size_t)-1, NULL);
		ep_set_free(&cut);
		if (truncated)
			*truncated = true;
		goto out;
	}
	struct packed *pk_subs = calloc(nsub ? nsub : 1, sizeof(*pk_subs));
	if (pk_subs == NULL) {
		rc = KB_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nsub; i++) {
		msgpack_packer p;
		msgpack_sbuffer_init(&pk_subs[i].sb);
		msgpack_packer_init(&p, &pk_subs[i].sb, msgpack_sbuffer_write);
		pack_sub(&p, s, pairs, &subs[i]);
	}
	qsort(pk_subs, nsub, sizeof(*pk_subs), packed_cmp);
	msgpack_pack_array(pk, nsub);
	for (size_t i = 0; i < nsub; i++) {
		kb_mp_pack(pk, "r", pk_subs[i].sb.data, pk_subs[i].sb.size);
		msgpack_sbuffer_destroy(&pk_subs[i].sb);
	}
	free(pk_subs);
out:
	free(pairs);
	free(subs);
	free(portbuf);
	return rc;
}

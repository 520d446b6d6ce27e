/* plugins/proxy-nftables/nft.c — the nftables backend (kind
 * proxy-backend): one table of its own, `ip kubus-proxy`, written as text
 * and applied through libnftables, plus (full sync) the bulk of its
 * elements as binary netlink messages (nl.c: libnftnl, libmnl).
 *
 * Layout (kube-proxy's nftables mode, reduced); -g<G> is the generation
 * of the last full sync:
 *   map service-ips-g<G>   ip daddr . l4proto . dport -> goto service chain
 *   map service-nodeports-g<G>  l4proto . dport (local daddr) -> goto chain
 *   map no-endpoint-*      the same keys -> goto reject-chain
 *   set cluster-ips-g<G>   every allocated ClusterIP; the rest of the
 *                          service CIDR is rejected
 *   set hairpin            ep . ep for this node's endpoints: a pod that
 *                          reaches itself through its service is
 *                          masqueraded (nothing else is, but locally
 *                          generated traffic, marked in nat-output)
 *   map e<n><p>-g<G>  (ip daddr . <p> dport . index -> endpoint ip . port)
 *   and chain l<n><p>-g<G> (`dnat ip to ip daddr . tcp dport . numgen
 *                random mod n map @e<n><p>-g<G>`): one pair per endpoint
 *                count n and protocol p (t/u/s), shared by every service
 *                port with n endpoints and no affinity; service-ips jumps
 *                to l<n><p>-g<G>. A changed endpoint is n elements deleted
 *                and n added. (A chain per service with a `numgen` cascade
 *                cost 2.3 s CPU for a full sync and 34 ms CPU per change at
 *                10,000 services x 10; an anonymous map per service was
 *                quadratic in the kernel; see README.md.)
 *   map f<n><p>-g<G>, chain m<n><p>-g<G>  the same for NodePorts, keyed by
 *                the node port
 *   s<N>p<i>    with ClientIP affinity, a chain per service port:
 *               `numgen random mod k == 0 goto` for k = n..2, then a goto
 *   s<N>p<i>e<j>, set <..>a<j>  with ClientIP affinity: one chain and one
 *               dynamic timeout set per endpoint; the service chain sends
 *               a known client to its endpoint's chain first
 *   n<N>p<i>    the same for a NodePort whose endpoints differ
 *               (externalTrafficPolicy: Local)
 * Hooks: nat prerouting/output at -100 (DNAT), nat postrouting at 100
 * (masquerade), filter input/forward/output at -110 (rejects, before
 * anything else sees the packet).
 *
 * Full sync (full_sync): the generation's sets, maps and l/m chains are
 * made beside the live ruleset and filled over netlink, then one
 * libnftables transaction deletes everything else the table had and
 * writes the rest: atomic for the traffic.
 * Incremental sync: each service keeps the text that removes it (`undo`);
 * a changed service is its undo followed by its new install, so the
 * transaction's size follows the changed services only. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter/nf_tables.h>
#include <nftables/libnftables.h>

#include <kubus/kubus.h>
#include <kubus/proxy.h>
#include <kubus/strmap.h>

#include "../proxy/pxbuf.h"
#include "nl.h"

#define TABLE_NAME "kubus-proxy"
#define TABLE "ip " TABLE_NAME

struct nftbe {
	kb_ctx *ctx;
	struct nft_ctx *nft;
	struct kb_strmap undo; /* key -> struct svcrec */
	struct kb_strmap hp;   /* endpoint IP -> services using it (count) */
	unsigned long long serial;
	bool have_table;
	/* one sync's element lists, emitted as one statement each */
	struct pxbuf el_svc, el_np, el_nosvc, el_nonp, el_cip, el_hp, el_hp_del;
	/* endpoint maps and their chains that exist in the table: name of
	 * the chain ("l10t") -> 1 */
	struct kb_strmap lbs;
	/* one sync's elements of the endpoint maps: map name -> pxbuf (text,
	 * or in a full sync binary records: key then data) */
	struct kb_strmap el_maps;
	/* the endpoint maps are named <x>-g<gen>: a full sync fills new ones
	 * next to the live table before it swaps the rest */
	unsigned gen;
	bool full;            /* this sync is a full one */
	bool bad;             /* an address did not parse */
	struct pxbuf t0;      /* full sync: creates the new endpoint maps */
	struct pxbuf t0_undo; /* and deletes them again */
	/* a full sync's elements sent with pxnl: ClusterIPs (4-byte keys),
	 * service ports and NodePorts that goto an l/m chain (key, then the
	 * chain's name in CHAIN_LEN bytes) */
	struct pxbuf bin_cip, bin_svc, bin_np;
	/* the sets that also carry the generation */
	char n_cip[32], n_svc[32], n_np[40];
};

#define CHAIN_LEN 32

/* What removing one service takes: its text, and the endpoint IPs whose
 * hairpin elements it holds a reference on. */
struct svcrec {
	char *undo;
	char *ips; /* space-separated, each once */
};

static void rec_free(void *v)
{
	struct svcrec *r = v;
	if (r) {
		free(r->undo);
		free(r->ips);
		free(r);
	}
}

static void hp_ref(struct nftbe *b, const char *ip);
static void hp_unref(struct nftbe *b, const char *ip);

static const char *proto_name(int p)
{
	switch (p) {
	case KB_PX_UDP:
		return "udp";
	case KB_PX_SCTP:
		return "sctp";
	default:
		return "tcp";
	}
}

static void el_add(struct pxbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void el_add(struct pxbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (b->n)
		pxbuf_addn(b, ", ", 2);
	pxbuf_addn(b, tmp, n > 0 && (size_t)n < sizeof(tmp) ? (size_t)n : 0);
}

static char proto_letter(int p)
{
	switch (p) {
	case KB_PX_UDP:
		return 'u';
	case KB_PX_SCTP:
		return 's';
	default:
		return 't';
	}
}

/* The element list of endpoint map `name` for this sync (NULL on oom). */
static struct pxbuf *map_elems(struct nftbe *b, const char *name)
{
	struct pxbuf *l = kb_strmap_get(&b->el_maps, name);
	if (l)
		return l;
	l = calloc(1, sizeof(*l));
	if (l == NULL || kb_strmap_put(&b->el_maps, name, l, NULL)) {
		free(l);
		return NULL;
	}
	return l;
}

static void pxbuf_free_ptr(void *v)
{
	pxbuf_free(v);
	free(v);
}

/* A service port without affinity is one element per endpoint in a map
 * shared by every service port with the same number of endpoints n and
 * the same protocol, and one shared chain per map that picks with
 * `numgen random mod n`:
 *   map e<n><p>  ip daddr . th dport . index -> endpoint ip . port
 *   chain l<n><p>  dnat ip to ip daddr . th dport . numgen random mod n map @e<n><p>
 * and for NodePorts (keyed by the node port alone):
 *   map f<n><p>  th dport . index -> endpoint;  chain m<n><p>
 * So a full sync adds a handful of chains and maps and then only
 * elements, and a changed endpoint is an element deleted and one added.
 * Creates the map and chain in `o` the first time; writes the chain's name
 * to `chain`. */
/* Binary element of an endpoint map, as the kernel compares it: each
 * field of a concatenation in its own 32-bit register (ports big-endian
 * and zero-padded, the numgen index in host order), key then data. */
static void bin_elem(struct nftbe *b, struct pxbuf *l, bool nodeport,
    const char *cip, uint16_t port, uint32_t idx,
    const struct kb_px_endpoint *ep)
{
	unsigned char r[20] = { 0 };
	size_t k = 0;
	if (!nodeport) {
		if (inet_pton(AF_INET, cip, r) != 1)
			b->bad = true;
		k = 4;
	}
	uint16_t pbe = htons(port);
	memcpy(r + k, &pbe, 2);
	memcpy(r + k + 4, &idx, 4);
	k += 8;
	if (inet_pton(AF_INET, ep->ip, r + k) != 1)
		b->bad = true;
	pbe = htons(ep->port);
	memcpy(r + k + 4, &pbe, 2);
	pxbuf_addn(l, (const char *)r, k + 8);
}

static uint8_t proto_num(int p)
{
	switch (p) {
	case KB_PX_UDP:
		return 17;
	case KB_PX_SCTP:
		return 132;
	default:
		return 6;
	}
}

/* Binary element of service-ips (cip given: ip . l4proto . port) or
 * service-nodeports (l4proto . port) that goes to `chain`. */
static void bin_goto(struct nftbe *b, struct pxbuf *l, const char *cip,
    int proto, uint16_t port, const char *chain)
{
	unsigned char r[12 + CHAIN_LEN] = { 0 };
	size_t k = 0;
	if (cip) {
		if (inet_pton(AF_INET, cip, r) != 1)
			b->bad = true;
		k = 4;
	}
	r[k] = proto_num(proto);
	uint16_t pbe = htons(port);
	memcpy(r + k + 4, &pbe, 2);
	k = cip ? 12 : 8;
	snprintf((char *)r + k, CHAIN_LEN, "%s", chain);
	pxbuf_addn(l, (const char *)r, k + CHAIN_LEN);
}

static size_t map_klen(const char *name)
{
	return name[0] == 'f' ? 8 : 12;
}

static void lb_map(struct nftbe *b, struct pxbuf *o, struct pxbuf *undo,
    bool nodeport, const char *cip, const struct kb_px_port *p,
    const struct kb_px_endpoint *eps, size_t n, char chain[32])
{
	char pl = proto_letter(p->proto);
	const char *pr = proto_name(p->proto);
	char map[40];
	snprintf(chain, CHAIN_LEN, "%c%zu%c-g%u", nodeport ? 'm' : 'l', n, pl,
	    b->gen);
	snprintf(map, sizeof(map), "%c%zu%c-g%u", nodeport ? 'f' : 'e', n, pl,
	    b->gen);
	if (kb_strmap_get(&b->lbs, chain) == NULL) {
		/* `tcp dport`, not `th dport`: libnftables refuses a rule
		 * after `meta l4proto tcp` against a th-typed map it reads
		 * back from the kernel ("conflicting protocols") */
		if (b->full)
			pxbuf_add(&b->t0_undo,
			    "delete chain " TABLE " %s\n"
			    "delete map " TABLE " %s\n",
			    chain, map);
		pxbuf_add(b->full ? &b->t0 : o,
		    "add map " TABLE
		    " %s { typeof %s%s dport . numgen random mod %zu : ip daddr . %s dport; }\n",
		    map, nodeport ? "" : "ip daddr . ", pr, n, pr);
		/* in a full sync with the map, so the rule binds it while it
		 * is empty (binding a map walks its elements) */
		pxbuf_add(b->full ? &b->t0 : o,
		    "add chain " TABLE " %s\n"
		    "add rule " TABLE
		    " %s meta l4proto %s dnat ip to %s%s dport . numgen random mod %zu map @%s\n",
		    chain, chain, pr, nodeport ? "" : "ip daddr . ", pr, n,
		    map);
		if (kb_strmap_put(&b->lbs, chain, (void *)1, NULL))
			o->oom = true;
	}
	struct pxbuf *l = map_elems(b, map);
	if (l == NULL) {
		o->oom = true;
		return;
	}
	pxbuf_add(undo, "delete element " TABLE " %s { ", map);
	for (size_t j = 0; j < n; j++) {
		if (b->full)
			bin_elem(b, l, nodeport, cip,
			    nodeport ? p->node_port : p->port, (uint32_t)j,
			    &eps[j]);
		else if (nodeport)
			el_add(l, "%u . %zu : %s . %u", p->node_port, j,
			    eps[j].ip, eps[j].port);
		else
			el_add(l, "%s . %u . %zu : %s . %u", cip, p->port, j,
			    eps[j].ip, eps[j].port);
		if (nodeport)
			pxbuf_add(undo, "%s%u . %zu", j ? ", " : "",
			    p->node_port, j);
		else
			pxbuf_add(undo, "%s%s . %u . %zu", j ? ", " : "", cip,
			    p->port, j);
	}
	pxbuf_add(undo, " }\n");
}

/* The chain that balances over eps (and, with affinity, its endpoint
 * chains and sets). Names start with `pfx` ('s' or 'n'). */
static void lb_chain(struct pxbuf *o, struct pxbuf *undo,
    struct pxbuf *undo_tail, const struct kb_px_service *s,
    const struct kb_px_port *p, const struct kb_px_endpoint *eps, size_t n,
    char pfx, unsigned long long id, size_t pi)
{
	const char *pr = proto_name(p->proto);
	pxbuf_add(o, "add chain " TABLE " %c%llup%zu\n", pfx, id, pi);
	pxbuf_add(undo, "delete chain " TABLE " %c%llup%zu\n", pfx, id, pi);
	if (!s->affinity) {
		/* numgen per rule: 1/n, then 1/(n-1) of the rest, …: uniform,
		 * and no anonymous map per service (the kernel names those
		 * with a scan of every set: quadratic at 10,000 services) */
		for (size_t j = 0; j < n; j++) {
			if (j + 1 < n)
				pxbuf_add(o,
				    "add rule " TABLE
				    " %c%llup%zu meta l4proto %s numgen random mod %zu == 0 dnat ip to %s:%u\n",
				    pfx, id, pi, pr, n - j, eps[j].ip,
				    eps[j].port);
			else
				pxbuf_add(o,
				    "add rule " TABLE
				    " %c%llup%zu meta l4proto %s dnat ip to %s:%u\n",
				    pfx, id, pi, pr, eps[j].ip, eps[j].port);
		}
		return;
	}
	for (size_t j = 0; j < n; j++) {
		pxbuf_add(o,
		    "add set " TABLE
		    " %c%llup%zua%zu { type ipv4_addr; flags dynamic,timeout; timeout %us; }\n"
		    "add chain " TABLE " %c%llup%zue%zu\n"
		    "add rule " TABLE
		    " %c%llup%zue%zu update @%c%llup%zua%zu { ip saddr } meta l4proto %s dnat ip to %s:%u\n",
		    pfx, id, pi, j, s->affinity_timeout_s, pfx, id, pi, j, pfx,
		    id, pi, j, pfx, id, pi, j, pr, eps[j].ip, eps[j].port);
		pxbuf_add(undo_tail,
		    "delete chain " TABLE " %c%llup%zue%zu\n"
		    "delete set " TABLE " %c%llup%zua%zu\n",
		    pfx, id, pi, j, pfx, id, pi, j);
	}
	for (size_t j = 0; j < n; j++)
		pxbuf_add(o,
		    "add rule " TABLE
		    " %c%llup%zu ip saddr @%c%llup%zua%zu goto %c%llup%zue%zu\n",
		    pfx, id, pi, pfx, id, pi, j, pfx, id, pi, j);
	for (size_t j = 0; j < n; j++) {
		if (j + 1 < n)
			pxbuf_add(o,
			    "add rule " TABLE
			    " %c%llup%zu numgen random mod %zu == 0 goto %c%llup%zue%zu\n",
			    pfx, id, pi, n - j, pfx, id, pi, j);
		else
			pxbuf_add(o,
			    "add rule " TABLE
			    " %c%llup%zu goto %c%llup%zue%zu\n",
			    pfx, id, pi, pfx, id, pi, j);
	}
}

static void add_ips(struct nftbe *b, struct pxbuf *ips,
    const struct kb_px_endpoint *eps, size_t n)
{
	/* Only this node's endpoints can be hairpin clients: a pod elsewhere
	 * reaches its service through its own node's proxy. */
	for (size_t j = 0; j < n; j++) {
		if (!eps[j].local)
			continue;
		char pat[24];
		snprintf(pat, sizeof(pat), " %s ", eps[j].ip);
		if (ips->p && strstr(ips->p, pat))
			continue;
		if (ips->n == 0)
			pxbuf_addn(ips, " ", 1);
		pxbuf_add(ips, "%s ", eps[j].ip);
		hp_ref(b, eps[j].ip);
	}
}

/* Append the install of service s to `o` and its elements to the element
 * lists; return what removes it, or NULL on oom. */
static struct svcrec *install(struct nftbe *b, struct pxbuf *o,
    const struct kb_px_service *s)
{
	unsigned long long id = ++b->serial;
	struct pxbuf undo_el = { 0 }, undo = { 0 }, undo_tail = { 0 };
	struct pxbuf ips = { 0 };
	if (b->full) {
		unsigned char a[4];
		if (inet_pton(AF_INET, s->cluster_ip, a) != 1)
			b->bad = true;
		pxbuf_addn(&b->bin_cip, (const char *)a, 4);
	} else {
		el_add(&b->el_cip, "%s", s->cluster_ip);
	}
	pxbuf_add(&undo_el, "delete element " TABLE " %s { %s }\n", b->n_cip,
	    s->cluster_ip);
	for (size_t i = 0; i < s->nports; i++) {
		const struct kb_px_port *p = &s->ports[i];
		const char *pr = proto_name(p->proto);
		add_ips(b, &ips, p->eps, p->neps);
		add_ips(b, &ips, p->node_eps, p->nnode_eps);
		if (p->neps && !s->affinity) {
			char chain[32];
			lb_map(b, o, &undo_el, false, s->cluster_ip, p, p->eps,
			    p->neps, chain);
			if (b->full)
				bin_goto(b, &b->bin_svc, s->cluster_ip,
				    p->proto, p->port, chain);
			else
				el_add(&b->el_svc, "%s . %s . %u : goto %s",
				    s->cluster_ip, pr, p->port, chain);
			pxbuf_add(&undo_el,
			    "delete element " TABLE " %s { %s . %s . %u }\n",
			    b->n_svc, s->cluster_ip, pr, p->port);
		} else if (p->neps) {
			lb_chain(o, &undo, &undo_tail, s, p, p->eps, p->neps,
			    's', id, i);
			el_add(&b->el_svc, "%s . %s . %u : goto s%llup%zu",
			    s->cluster_ip, pr, p->port, id, i);
			pxbuf_add(&undo_el,
			    "delete element " TABLE " %s { %s . %s . %u }\n",
			    b->n_svc, s->cluster_ip, pr, p->port);
		} else {
			el_add(&b->el_nosvc, "%s . %s . %u : goto reject-chain",
			    s->cluster_ip, pr, p->port);
			pxbuf_add(&undo_el,
			    "delete element " TABLE
			    " no-endpoint-services { %s . %s . %u }\n",
			    s->cluster_ip, pr, p->port);
		}
		if (!p->node_port)
			continue;
		if (p->nnode_eps == 0) {
			el_add(&b->el_nonp, "%s . %u : goto reject-chain", pr,
			    p->node_port);
			pxbuf_add(&undo_el,
			    "delete element " TABLE
			    " no-endpoint-nodeports { %s . %u }\n",
			    pr, p->node_port);
			continue;
		}
		if (!s->affinity) {
			char chain[32];
			lb_map(b, o, &undo_el, true, s->cluster_ip, p,
			    p->node_eps, p->nnode_eps, chain);
			if (b->full)
				bin_goto(b, &b->bin_np, NULL, p->proto,
				    p->node_port, chain);
			else
				el_add(&b->el_np, "%s . %u : goto %s", pr,
				    p->node_port, chain);
			pxbuf_add(&undo_el,
			    "delete element " TABLE " %s { %s . %u }\n",
			    b->n_np, pr, p->node_port);
			continue;
		}
		char target = 's';
		if (p->node_eps != p->eps || p->nnode_eps != p->neps) {
			lb_chain(o, &undo, &undo_tail, s, p, p->node_eps,
			    p->nnode_eps, 'n', id, i);
			target = 'n';
		}
		el_add(&b->el_np, "%s . %u : goto %c%llup%zu", pr, p->node_port,
		    target, id, i);
		pxbuf_add(&undo_el, "delete element " TABLE " %s { %s . %u }\n",
		    b->n_np, pr, p->node_port);
	}
	/* elements first (they reference the chains), then the chains, then
	 * what the chains reference */
	pxbuf_addn(&undo_el, undo.p ? undo.p : "", undo.n);
	pxbuf_addn(&undo_el, undo_tail.p ? undo_tail.p : "", undo_tail.n);
	pxbuf_free(&undo);
	pxbuf_free(&undo_tail);
	struct svcrec *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		pxbuf_free(&undo_el);
		pxbuf_free(&ips);
		return NULL;
	}
	r->undo = pxbuf_take(&undo_el);
	r->ips = ips.n ? pxbuf_take(&ips) : strdup("");
	pxbuf_free(&ips);
	if (r->undo == NULL || r->ips == NULL) {
		rec_free(r);
		return NULL;
	}
	return r;
}

static void hp_ref(struct nftbe *b, const char *ip)
{
	uintptr_t n = (uintptr_t)kb_strmap_get(&b->hp, ip);
	if (n == 0)
		el_add(&b->el_hp, "%s . %s", ip, ip);
	if (kb_strmap_put(&b->hp, ip, (void *)(n + 1), NULL))
		b->el_hp.oom = true;
}

static void hp_unref(struct nftbe *b, const char *ip)
{
	uintptr_t n = (uintptr_t)kb_strmap_get(&b->hp, ip);
	if (n == 0)
		return;
	if (n == 1) {
		kb_strmap_del(&b->hp, ip);
		el_add(&b->el_hp_del, "%s . %s", ip, ip);
	} else {
		kb_strmap_put(&b->hp, ip, (void *)(n - 1), NULL);
	}
}

/* Drop a removed service's hairpin references. */
static void unref_ips(struct nftbe *b, const char *ips)
{
	char ip[24];
	for (const char *p = ips; *p;) {
		p += strspn(p, " ");
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		if (n < sizeof(ip)) {
			memcpy(ip, p, n);
			ip[n] = '\0';
			hp_unref(b, ip);
		}
		p += n;
	}
}

static void emit_map(void *arg, const char *name, void *val)
{
	struct pxbuf *o = arg, *l = val;
	if (l->n) {
		pxbuf_add(o, "add element " TABLE " %s { ", name);
		pxbuf_addn(o, l->p, l->n);
		pxbuf_add(o, " }\n");
	}
	if (l->oom)
		o->oom = true;
}

static void emit_elements(struct nftbe *b, struct pxbuf *o)
{
	struct {
		struct pxbuf *l;
		const char *set;
	} v[] = { { &b->el_cip, b->n_cip }, { &b->el_svc, b->n_svc },
		{ &b->el_np, b->n_np },
		{ &b->el_nosvc, "no-endpoint-services" },
		{ &b->el_nonp, "no-endpoint-nodeports" },
		{ &b->el_hp, "hairpin" } };
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		if (v[i].l->n) {
			pxbuf_add(o, "add element " TABLE " %s { ", v[i].set);
			pxbuf_addn(o, v[i].l->p, v[i].l->n);
			pxbuf_add(o, " }\n");
		}
		if (v[i].l->oom)
			o->oom = true;
		pxbuf_reset(v[i].l);
	}
	if (!b->full) /* a full sync sends them with pxnl (batch_maps) */
		kb_strmap_each(&b->el_maps, emit_map, o);
	kb_strmap_clear(&b->el_maps, pxbuf_free_ptr);
}

struct batch_arg {
	struct nftbe *b;
	struct pxnl_batch *t;
	bool oom;
};

static void batch_map(void *arg, const char *name, void *val)
{
	struct batch_arg *a = arg;
	struct pxbuf *l = val;
	size_t klen = map_klen(name), rec = klen + 8;
	if (l->oom)
		a->oom = true;
	for (size_t off = 0; off + rec <= l->n; off += rec)
		pxnl_elem(a->t, TABLE_NAME, name, l->p + off, klen,
		    l->p + off + klen, 8);
}

/* A full sync's endpoint map elements, as one netlink batch. */
static int batch_maps(struct nftbe *b)
{
	struct pxnl_batch t;
	struct batch_arg a = { .b = b, .t = &t };
	pxnl_begin(&t);
	kb_strmap_each(&b->el_maps, batch_map, &a);
	for (size_t off = 0; off + 4 <= b->bin_cip.n; off += 4)
		pxnl_elem(&t, TABLE_NAME, b->n_cip, b->bin_cip.p + off, 4, NULL,
		    0);
	for (size_t off = 0; off + 12 + CHAIN_LEN <= b->bin_svc.n;
	     off += 12 + CHAIN_LEN)
		pxnl_elem_goto(&t, TABLE_NAME, b->n_svc, b->bin_svc.p + off, 12,
		    b->bin_svc.p + off + 12);
	for (size_t off = 0; off + 8 + CHAIN_LEN <= b->bin_np.n;
	     off += 8 + CHAIN_LEN)
		pxnl_elem_goto(&t, TABLE_NAME, b->n_np, b->bin_np.p + off, 8,
		    b->bin_np.p + off + 8);
	if (b->bin_cip.oom || b->bin_svc.oom || b->bin_np.oom)
		a.oom = true;
	if (a.oom || b->bad) {
		pxnl_free(&t);
		return a.oom ? kb_fail(b->ctx, KB_ENOMEM, "out of memory") :
			       kb_fail(b->ctx, KB_EINVAL,
				   "an address does not parse as IPv4");
	}
	int rc = pxnl_commit(&t);
	if (rc != 0) {
		kb_error(b->ctx,
		    "nftables: adding the endpoint map elements failed",
		    "err=\"%s\" at=\"%s\"", strerror(-rc), t.err);
		return KB_ESYS;
	}
	return 0;
}

/* The sets a full sync fills with pxnl, of this generation: created with
 * the endpoint maps, before the rest of the table. */
static void set_gen(struct nftbe *b, unsigned gen)
{
	b->gen = gen;
	snprintf(b->n_cip, sizeof(b->n_cip), "cluster-ips-g%u", gen);
	snprintf(b->n_svc, sizeof(b->n_svc), "service-ips-g%u", gen);
	snprintf(b->n_np, sizeof(b->n_np), "service-nodeports-g%u", gen);
}

static void gen_sets(struct nftbe *b)
{
	pxbuf_add(&b->t0,
	    "add set " TABLE " %s { type ipv4_addr; }\n"
	    "add map " TABLE
	    " %s { type ipv4_addr . inet_proto . inet_service : verdict; }\n"
	    "add map " TABLE
	    " %s { type inet_proto . inet_service : verdict; }\n",
	    b->n_cip, b->n_svc, b->n_np);
	/* the maps that goto the l/m chains go before those chains */
	pxbuf_add(&b->t0_undo,
	    "delete map " TABLE " %s\n"
	    "delete map " TABLE " %s\n"
	    "delete set " TABLE " %s\n",
	    b->n_svc, b->n_np, b->n_cip);
}

static void base_table(struct nftbe *b, struct pxbuf *o, const char *cidr)
{
	pxbuf_add(o,
	    "table " TABLE " {\n"
	    " set hairpin { type ipv4_addr . ipv4_addr; }\n"
	    " map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; }\n"
	    " map no-endpoint-nodeports { type inet_proto . inet_service : verdict; }\n"
	    " chain reject-chain { reject; }\n"
	    " chain firewall-check {\n"
	    "  ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n"
	    "  fib daddr type local ip daddr != { 127.0.0.0/8, %s } meta l4proto . th dport vmap @no-endpoint-nodeports\n"
	    "  ip daddr %s ip daddr != @%s reject\n"
	    " }\n"
	    " chain filter-input { type filter hook input priority -110; policy accept; jump firewall-check; }\n"
	    " chain filter-forward { type filter hook forward priority -110; policy accept; jump firewall-check; }\n"
	    " chain filter-output { type filter hook output priority -110; policy accept; jump firewall-check; }\n"
	    " chain services {\n"
	    "  ip daddr . meta l4proto . th dport vmap @%s\n"
	    "  fib daddr type local ip daddr != { 127.0.0.0/8, %s } meta l4proto . th dport vmap @%s\n"
	    " }\n"
	    " chain nat-prerouting { type nat hook prerouting priority -100; policy accept; jump services; }\n"
	    /* mark locally generated packets for masquerade, and unmark them
	     * again when no service took them (a DNAT ends the chain) */
	    " chain nat-output { type nat hook output priority -100; policy accept;"
	    " meta mark set meta mark | 0x4000; jump services; meta mark set meta mark & 0xffffbfff; }\n"
	    " chain nat-postrouting { type nat hook postrouting priority 100; policy accept;"
	    " meta mark & 0x4000 == 0x4000 meta mark set meta mark & 0xffffbfff masquerade;"
	    /* a pod reaching itself through its service */
	    " ip saddr . ip daddr @hairpin masquerade; }\n"
	    "}\n",
	    cidr, cidr, b->n_cip, b->n_svc, cidr, b->n_np);
}

static int apply(struct nftbe *b, struct pxbuf *o)
{
	if (o->oom)
		return kb_fail(b->ctx, KB_ENOMEM, "out of memory");
	if (o->n == 0)
		return 0;
	int rc = nft_run_cmd_from_buffer(b->nft, o->p);
	const char *err = nft_ctx_get_error_buffer(b->nft);
	if (rc != 0) {
		kb_error(b->ctx, "nftables transaction failed", "err=\"%.*s\"",
		    (int)strcspn(err ? err : "", "\n"), err ? err : "");
		return KB_ESYS;
	}
	return 0;
}

static const struct kb_px_service *find(const struct kb_px_state *st,
    const char *key)
{
	size_t lo = 0, hi = st->nsvcs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(st->svcs[mid].key, key);
		if (c == 0)
			return &st->svcs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* What a full sync finds in the table: the text that deletes every named
 * set and chain, and the next free map generation. */
struct old_names {
	struct pxbuf flush, sets, chains;
	unsigned gen;
};

static void note_old(void *arg, bool chain, const char *name, uint32_t flags)
{
	struct old_names *o = arg;
	if (chain) {
		/* not `flush table`: the new l/m chains have their rules */
		pxbuf_add(&o->flush, "flush chain " TABLE " %s\n", name);
		pxbuf_add(&o->chains, "delete chain " TABLE " %s\n", name);
		return;
	}
	if (flags & NFT_SET_ANONYMOUS) /* goes with its rule */
		return;
	pxbuf_add(&o->sets, "delete %s " TABLE " %s\n",
	    flags & NFT_SET_MAP ? "map" : "set", name);
	const char *g = strstr(name, "-g");
	if (g && g[2] >= '0' && g[2] <= '9') {
		unsigned long v = strtoul(g + 2, NULL, 10);
		if (v >= o->gen && v < 0x7fffffff)
			o->gen = (unsigned)v + 1;
	}
}

/* A full sync, atomic for whoever uses the table, in three steps:
 *  1. (libnftables) create the endpoint maps of a new generation, empty,
 *     in the table (created if missing); no rule uses them yet;
 *  2. (binary netlink, nl.c) fill them: ~100,000 elements in one batch;
 *  3. (libnftables, one transaction) delete every rule, set and chain the
 *     table had but the new maps, and write the rest of the ruleset.
 * Until step 3 commits the old ruleset serves; after it, the new one. Text
 * for the ~100,000 endpoint elements cost libnftables ~1 s of parsing;
 * step 2 costs little more than the kernel's inserts. */
static int full_sync(struct nftbe *b, const struct kb_px_state *st,
    struct pxbuf *o, struct kb_strmap *fresh)
{
	struct old_names old = { .gen = b->gen + 1 };
	int rc = 0;
	int lr = pxnl_list(TABLE_NAME, note_old, &old);
	if (lr != 0 && lr != -ENOENT) {
		kb_error(b->ctx, "nftables: cannot list the table",
		    "err=\"%s\"", strerror(-lr));
		rc = KB_ESYS;
		goto out;
	}
	set_gen(b, old.gen);
	b->full = true;
	b->bad = false;
	kb_strmap_clear(&b->hp, NULL);
	kb_strmap_clear(&b->lbs, NULL);
	pxbuf_reset(&b->el_hp_del);
	pxbuf_reset(&b->t0);
	pxbuf_reset(&b->t0_undo);
	pxbuf_add(&b->t0, "add table " TABLE "\n");
	gen_sets(b);
	if (lr == 0) {
		pxbuf_addn(o, old.flush.p ? old.flush.p : "", old.flush.n);
		pxbuf_addn(o, old.sets.p ? old.sets.p : "", old.sets.n);
		pxbuf_addn(o, old.chains.p ? old.chains.p : "", old.chains.n);
		if (old.flush.oom || old.sets.oom || old.chains.oom)
			o->oom = true;
	}
	base_table(b, o, st->service_cidr);
	for (size_t i = 0; rc == 0 && i < st->nsvcs; i++) {
		struct svcrec *u = install(b, o, &st->svcs[i]);
		if (u == NULL ||
		    kb_strmap_put(fresh, st->svcs[i].key, u, NULL)) {
			rec_free(u);
			rc = KB_ENOMEM;
		}
	}
	bool made = false;
	if (rc == 0)
		rc = apply(b, &b->t0);
	if (rc == 0) {
		made = true;
		rc = batch_maps(b);
	}
	emit_elements(b, o);
	if (rc == 0)
		rc = apply(b, o);
	if (rc != 0 && made) {
		/* leave the table as it was (or as missing as it was) */
		if (lr == -ENOENT)
			nft_run_cmd_from_buffer(b->nft,
			    "delete table " TABLE "\n");
		else if (b->t0_undo.n && !b->t0_undo.oom)
			nft_run_cmd_from_buffer(b->nft, b->t0_undo.p);
	}
out:
	b->full = false;
	pxbuf_free(&b->bin_cip);
	pxbuf_free(&b->bin_svc);
	pxbuf_free(&b->bin_np);
	pxbuf_free(&old.flush);
	pxbuf_free(&old.sets);
	pxbuf_free(&old.chains);
	pxbuf_free(&b->t0);
	pxbuf_free(&b->t0_undo);
	return rc;
}

static int nft_sync(void *state, const struct kb_px_state *st)
{
	struct nftbe *b = state;
	struct pxbuf o = { 0 };
	struct kb_strmap fresh = { 0 };
	bool full = st->full || !b->have_table;
	int rc = 0;
	if (full) {
		rc = full_sync(b, st, &o, &fresh);
		if (rc == 0) {
			kb_strmap_clear(&b->undo, rec_free);
			b->undo = fresh;
			b->have_table = true;
		} else {
			kb_strmap_clear(&fresh, rec_free);
			b->have_table = false;
		}
		pxbuf_free(&o);
		return rc;
	}
	/* the removals of every changed service, then the installs */
	for (size_t i = 0; i < st->nchanged; i++) {
		const struct svcrec *u =
		    kb_strmap_get(&b->undo, st->changed[i]);
		if (u) {
			pxbuf_addn(&o, u->undo, strlen(u->undo));
			unref_ips(b, u->ips);
		}
	}
	if (b->el_hp_del.n) {
		pxbuf_add(&o, "delete element " TABLE " hairpin { ");
		pxbuf_addn(&o, b->el_hp_del.p, b->el_hp_del.n);
		pxbuf_add(&o, " }\n");
	}
	if (b->el_hp_del.oom)
		o.oom = true;
	pxbuf_reset(&b->el_hp_del);
	for (size_t i = 0; rc == 0 && i < st->nchanged; i++) {
		const struct kb_px_service *s = find(st, st->changed[i]);
		if (s == NULL)
			continue;
		struct svcrec *u = install(b, &o, s);
		if (u == NULL || kb_strmap_put(&fresh, s->key, u, NULL)) {
			rec_free(u);
			rc = KB_ENOMEM;
		}
	}
	emit_elements(b, &o);
	if (rc == 0)
		rc = apply(b, &o);
	if (rc == 0) {
		for (size_t i = 0; i < st->nchanged; i++) {
			struct svcrec *u =
			    kb_strmap_get(&fresh, st->changed[i]);
			void *old = NULL;
			if (u) {
				kb_strmap_del(&fresh, st->changed[i]);
				if (kb_strmap_put(&b->undo, st->changed[i], u,
					&old)) {
					rec_free(u);
					/* we no longer know how to remove it */
					b->have_table = false;
				}
			} else {
				old = kb_strmap_del(&b->undo, st->changed[i]);
			}
			rec_free(old);
		}
	} else {
		b->have_table = false; /* the proxy retries with a full sync */
	}
	kb_strmap_clear(&fresh, rec_free);
	pxbuf_free(&o);
	return rc;
}

static int nft_cleanup(void *state)
{
	struct nftbe *b = state;
	/* `add` first, so the delete never fails for a missing table */
	int rc = nft_run_cmd_from_buffer(b->nft,
	    "add table " TABLE "\ndelete table " TABLE "\n");
	kb_strmap_clear(&b->undo, rec_free);
	kb_strmap_clear(&b->hp, NULL);
	kb_strmap_clear(&b->lbs, NULL);
	b->have_table = false;
	if (rc != 0) {
		const char *err = nft_ctx_get_error_buffer(b->nft);
		kb_error(b->ctx, "cannot delete the nftables table",
		    "err=\"%.*s\"", (int)strcspn(err ? err : "", "\n"),
		    err ? err : "");
		return KB_ESYS;
	}
	return 0;
}

static const struct kb_proxy_ops nft_ops = {
	.size = sizeof(struct kb_proxy_ops),
	.sync = nft_sync,
	.cleanup = nft_cleanup,
};

static int nftbe_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	static const struct kb_opt opts[] = { KB_OPT_END };
	char err[512];
	struct {
		int unused;
	} none;
	if (kb_conf_opts(conf, opts, &none, "proxy-nftables", err,
		sizeof(err)) != 0)
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	struct nftbe *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	b->ctx = ctx;
	b->nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (b->nft == NULL) {
		free(b);
		return kb_fail(ctx, KB_ESYS, "nft_ctx_new failed");
	}
	nft_ctx_buffer_output(b->nft);
	nft_ctx_buffer_error(b->nft);
	*state = b;
	return 0;
}

static void nftbe_fini(void *state)
{
	struct nftbe *b = state;
	if (b == NULL)
		return;
	kb_strmap_clear(&b->undo, rec_free);
	kb_strmap_clear(&b->hp, NULL);
	kb_strmap_clear(&b->lbs, NULL);
	kb_strmap_clear(&b->el_maps, pxbuf_free_ptr);
	pxbuf_free(&b->el_hp);
	pxbuf_free(&b->el_hp_del);
	pxbuf_free(&b->el_svc);
	pxbuf_free(&b->el_np);
	pxbuf_free(&b->el_nosvc);
	pxbuf_free(&b->el_nonp);
	pxbuf_free(&b->el_cip);
	pxbuf_free(&b->t0);
	pxbuf_free(&b->t0_undo);
	pxbuf_free(&b->bin_cip);
	pxbuf_free(&b->bin_svc);
	pxbuf_free(&b->bin_np);
	nft_ctx_free(b->nft);
	free(b);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "proxy-nftables",
		.version = "0.1.0",
		.description =
		    "service proxy backend: one nftables table with verdict maps, atomic syncs",
		.kind = KB_KIND_PROXY_BACKEND,
		.init = nftbe_init,
		.fini = nftbe_fini,
		.ops = &nft_ops,
	};
	return &p;
}

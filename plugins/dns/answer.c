/* plugins/dns/answer.c — one query in, one response out, through ldns.
 *
 * What gets which answer:
 *   - not a query (QR set), or under 12 bytes: nothing (dropped);
 *   - undecodable (bad labels, pointer loops, counts past the end): FORMERR;
 *   - opcode other than QUERY: NOTIMP; qdcount != 1: FORMERR;
 *   - a name in the cluster domain (or a PTR we hold): the records; a name
 *     that exists without records of the type asked: NOERROR, no answers,
 *     the zone's SOA in authority (NODATA); an unknown name: NXDOMAIN with
 *     the SOA, so that resolvers walking the search path move on quickly;
 *   - anything else: forwarded to the upstream when one is configured,
 *     REFUSED otherwise.
 * A UDP response larger than the client can take (512 bytes, or its EDNS
 * size up to 1232) is sent truncated (TC, no records) so it retries on TCP.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "dns.h"

#define EDNS_MAX 1232

static ldns_rr *rr_new(const ldns_rdf *owner, ldns_rr_type t, uint32_t ttl)
{
	ldns_rr *rr = ldns_rr_new();
	if (rr == NULL)
		return NULL;
	ldns_rdf *o = ldns_rdf_clone(owner);
	if (o == NULL) {
		ldns_rr_free(rr);
		return NULL;
	}
	ldns_rr_set_owner(rr, o);
	ldns_rr_set_type(rr, t);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, ttl);
	return rr;
}

/* Push rdf onto rr; false (and rdf freed) on failure. */
static bool push(ldns_rr *rr, ldns_rdf *rdf)
{
	if (rdf == NULL)
		return false;
	if (!ldns_rr_push_rdf(rr, rdf)) {
		ldns_rdf_deep_free(rdf);
		return false;
	}
	return true;
}

static ldns_rdf *dname(const char *text)
{
	char buf[DNS_NAME_MAX + 32];
	if (snprintf(buf, sizeof(buf), "%s.", text) >= (int)sizeof(buf))
		return NULL;
	return ldns_dname_new_frm_str(buf);
}

static bool add(ldns_pkt *p, ldns_pkt_section sec, ldns_rr *rr, bool ok)
{
	if (rr == NULL)
		return false;
	if (!ok || !ldns_pkt_push_rr(p, sec, rr)) {
		ldns_rr_free(rr);
		return false;
	}
	return true;
}

static bool add_a(ldns_pkt *p, const ldns_rdf *owner, uint32_t ttl,
    uint32_t ip)
{
	ldns_rr *rr = rr_new(owner, LDNS_RR_TYPE_A, ttl);
	return add(p, LDNS_SECTION_ANSWER, rr,
	    rr && push(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, &ip)));
}

static bool add_soa(ldns_pkt *p, const struct dns_zone *z, ldns_pkt_section s)
{
	char buf[DNS_NAME_MAX + 16];
	ldns_rdf *apex = dname(z->domain);
	if (apex == NULL)
		return false;
	ldns_rr *rr = rr_new(apex, LDNS_RR_TYPE_SOA, z->ttl);
	ldns_rdf_deep_free(apex);
	if (rr == NULL)
		return false;
	bool ok = true;
	snprintf(buf, sizeof(buf), "ns.dns.%s", z->domain);
	ok = ok && push(rr, dname(buf));
	snprintf(buf, sizeof(buf), "hostmaster.%s", z->domain);
	ok = ok && push(rr, dname(buf));
	/* serial, refresh, retry, expire, minimum (the negative TTL) */
	uint32_t v[5] = { (uint32_t)(z->gen & 0xffffffffu), 7200, 1800,
		86400, z->ttl };
	ok = ok && push(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, v[0]));
	for (int i = 1; i < 5 && ok; i++)
		ok = push(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, v[i]));
	return add(p, s, rr, ok);
}

/* Letters, digits, '-' and '_': what ldns prints as they are. */
static bool plain_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The question's name as lower-case text without the trailing dot; false
 * when it holds characters that need escaping (never ours). Names of
 * plain characters are converted here; the rest through ldns's printer,
 * whose escaping decides. */
static bool qname_text(const ldns_rdf *owner, char *out, size_t len)
{
	const uint8_t *d = ldns_rdf_data(owner);
	size_t sz = ldns_rdf_size(owner), i = 0, k = 0;
	while (d != NULL && i < sz && d[i] != 0 && i + 1 + d[i] <= sz) {
		uint8_t l = d[i];
		if (k > 0)
			out[k++] = '.';
		size_t j = 0;
		while (j < l && k + 1 < len && plain_char(d[i + 1 + j])) {
			uint8_t c = d[i + 1 + j++];
			out[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		if (j < l)
			break; /* not plain, or long: ldns below */
		i += 1u + l;
	}
	if (d != NULL && i + 1 == sz && d[i] == 0 && k + 1 < len) {
		out[k] = '\0';
		return true;
	}
	char *s = ldns_rdf2str(owner);
	if (s == NULL)
		return false;
	size_t n = strlen(s);
	bool ok = n < len && strchr(s, '\\') == NULL;
	if (ok) {
		if (n > 0 && s[n - 1] == '.')
			s[--n] = '\0';
		for (size_t i = 0; i <= n; i++)
			out[i] = (char)tolower((unsigned char)s[i]);
	}
	free(s);
	return ok;
}

static bool in_domain(const struct dns_zone *z, const char *name)
{
	size_t n = strlen(name), d = strlen(z->domain);
	if (n == d)
		return !strcmp(name, z->domain);
	return n > d && name[n - d - 1] == '.' && !strcmp(name + n - d,
	    z->domain);
}

/* Fill the answer for name/type. Returns the rcode; *known says whether
 * the name is ours (in the domain, or a PTR we hold). */
static int lookup(ldns_pkt *p, const struct dns_zone *z, const char *name,
    const ldns_rdf *owner, ldns_rr_type t, bool *known)
{
	const struct dns_name *n = dns_zone_find(z, name);
	uint32_t pod;
	*known = n != NULL || in_domain(z, name);
	if (!*known)
		return LDNS_RCODE_NOERROR;
	bool any = t == LDNS_RR_TYPE_ANY;
	size_t before = ldns_pkt_ancount(p);
	if (n != NULL) {
		if (t == LDNS_RR_TYPE_A || any)
			for (size_t i = 0; i < n->na; i++)
				add_a(p, owner, z->ttl, n->a[i]);
		if (t == LDNS_RR_TYPE_SRV || any)
			for (size_t i = 0; i < n->nsrv; i++) {
				ldns_rr *rr = rr_new(owner, LDNS_RR_TYPE_SRV,
				    z->ttl);
				uint16_t w = (uint16_t)(100 / n->nsrv);
				add(p, LDNS_SECTION_ANSWER, rr, rr &&
				    push(rr, ldns_native2rdf_int16(
					LDNS_RDF_TYPE_INT16, 0)) &&
				    push(rr, ldns_native2rdf_int16(
					LDNS_RDF_TYPE_INT16, w ? w : 1)) &&
				    push(rr, ldns_native2rdf_int16(
					LDNS_RDF_TYPE_INT16, n->srv[i].port)) &&
				    push(rr, dname(n->srv[i].target)));
			}
		if ((t == LDNS_RR_TYPE_PTR || any) && n->ptr != NULL) {
			ldns_rr *rr = rr_new(owner, LDNS_RR_TYPE_PTR, z->ttl);
			add(p, LDNS_SECTION_ANSWER, rr,
			    rr && push(rr, dname(n->ptr)));
		}
	} else if (dns_zone_pod_addr(z, name, &pod)) {
		if (t == LDNS_RR_TYPE_A || any)
			add_a(p, owner, z->ttl, pod);
	} else if (!strcmp(name, z->domain)) {
		if (t == LDNS_RR_TYPE_SOA || any)
			add_soa(p, z, LDNS_SECTION_ANSWER);
	} else if (!dns_zone_exists(z, name)) {
		add_soa(p, z, LDNS_SECTION_AUTHORITY);
		return LDNS_RCODE_NXDOMAIN;
	}
	if (ldns_pkt_ancount(p) == before)
		add_soa(p, z, LDNS_SECTION_AUTHORITY); /* NODATA */
	return LDNS_RCODE_NOERROR;
}

/* Send q to the upstream over UDP and copy its reply; 0 on failure. */
static size_t forward(const struct dns_upstream *up, const uint8_t *q,
    size_t qlen, uint8_t *out, size_t cap)
{
	char host[64];
	snprintf(host, sizeof(host), "%s", up->addr);
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return 0;
	*colon = '\0';
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)atoi(colon + 1)) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return 0;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	size_t got = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, q, qlen, 0) == (ssize_t)qlen) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		while (poll(&pf, 1, up->timeout_ms) == 1) {
			ssize_t n = recv(fd, out, cap, 0);
			if (n < 12)
				break;
			if (out[0] == q[0] && out[1] == q[1]) {
				got = (size_t)n;
				break;
			}
		}
	}
	close(fd);
	return got;
}

/* A bare header-only reply with rcode, for what ldns could not decode. */
static size_t bare(const uint8_t *q, uint8_t *out, size_t cap, int rcode)
{
	if (cap < 12)
		return 0;
	memset(out, 0, 12);
	out[0] = q[0];
	out[1] = q[1];
	out[2] = (uint8_t)(0x80 | (q[2] & 0x79)); /* QR, opcode, RD */
	out[3] = (uint8_t)(rcode & 0xf);
	return 12;
}

static size_t emit(ldns_pkt *r, uint8_t *out, size_t cap, size_t limit)
{
	uint8_t *wire = NULL;
	size_t n = 0;
	if (ldns_pkt2wire(&wire, r, &n) != LDNS_STATUS_OK || wire == NULL) {
		free(wire);
		return 0;
	}
	if (n > limit || n > cap) {
		/* Truncated: the header and the question only, TC set. */
		free(wire);
		ldns_rr_list_deep_free(ldns_pkt_answer(r));
		ldns_rr_list_deep_free(ldns_pkt_authority(r));
		ldns_rr_list_deep_free(ldns_pkt_additional(r));
		ldns_pkt_set_answer(r, ldns_rr_list_new());
		ldns_pkt_set_authority(r, ldns_rr_list_new());
		ldns_pkt_set_additional(r, ldns_rr_list_new());
		ldns_pkt_set_ancount(r, 0);
		ldns_pkt_set_nscount(r, 0);
		ldns_pkt_set_arcount(r, 0);
		ldns_pkt_set_tc(r, true);
		wire = NULL;
		if (ldns_pkt2wire(&wire, r, &n) != LDNS_STATUS_OK ||
		    wire == NULL || n > cap) {
			free(wire);
			return 0;
		}
	}
	memcpy(out, wire, n);
	free(wire);
	return n;
}

static size_t answer(struct dns_zone *z, const struct dns_upstream *up,
    const uint8_t *q, size_t qlen, uint8_t *out, size_t cap, bool tcp,
    bool *cacheable, uint64_t *gen)
{
	if (qlen < 12 || (q[2] & 0x80))
		return 0; /* too short to answer, or a response */
	if (((q[2] >> 3) & 0xf) != LDNS_PACKET_QUERY)
		return bare(q, out, cap, LDNS_RCODE_NOTIMPL);
	ldns_pkt *qp = NULL;
	if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK || qp == NULL)
		return bare(q, out, cap, LDNS_RCODE_FORMERR);
	size_t n = 0;
	if (ldns_pkt_qdcount(qp) != 1 ||
	    ldns_rr_list_rr_count(ldns_pkt_question(qp)) != 1) {
		n = bare(q, out, cap, LDNS_RCODE_FORMERR);
		goto done;
	}
	const ldns_rr *question = ldns_rr_list_rr(ldns_pkt_question(qp), 0);
	size_t limit = 512;
	if (tcp)
		limit = 65535;
	else if (ldns_pkt_edns(qp))
		limit = ldns_pkt_edns_udp_size(qp) > EDNS_MAX ? EDNS_MAX :
		    ldns_pkt_edns_udp_size(qp) < 512 ? 512 :
		    ldns_pkt_edns_udp_size(qp);

	ldns_pkt *r = ldns_pkt_new();
	if (r == NULL) {
		n = bare(q, out, cap, LDNS_RCODE_SERVFAIL);
		goto done;
	}
	ldns_pkt_set_id(r, ldns_pkt_id(qp));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_opcode(r, LDNS_PACKET_QUERY);
	ldns_pkt_set_rd(r, ldns_pkt_rd(qp));
	ldns_rr *qc = ldns_rr_clone(question);
	if (qc == NULL || !ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, qc)) {
		ldns_rr_free(qc);
		ldns_pkt_free(r);
		n = bare(q, out, cap, LDNS_RCODE_SERVFAIL);
		goto done;
	}
	if (ldns_pkt_edns(qp))
		ldns_pkt_set_edns_udp_size(r, EDNS_MAX);

	char name[DNS_NAME_MAX];
	bool known = false;
	int rcode = LDNS_RCODE_NOERROR;
	ldns_rr_class cl = ldns_rr_get_class(question);
	if (qname_text(ldns_rr_owner(question), name, sizeof(name)) &&
	    (cl == LDNS_RR_CLASS_IN || cl == LDNS_RR_CLASS_ANY)) {
		pthread_rwlock_rdlock(&z->lock);
		rcode = lookup(r, z, name, ldns_rr_owner(question),
		    ldns_rr_get_type(question), &known);
		*gen = z->gen;
		pthread_rwlock_unlock(&z->lock);
	}
	if (known) {
		ldns_pkt_set_aa(r, true);
		ldns_pkt_set_rcode(r, (uint8_t)rcode);
		n = emit(r, out, cap, limit);
		*cacheable = n > 0 && n <= 512 && !ldns_pkt_tc(r);
	} else if (up != NULL && up->addr[0] != '\0') {
		n = forward(up, q, qlen, out, cap);
		if (n == 0) {
			ldns_pkt_set_rcode(r, LDNS_RCODE_SERVFAIL);
			n = emit(r, out, cap, limit);
		}
	} else {
		ldns_pkt_set_rcode(r, LDNS_RCODE_REFUSED);
		n = emit(r, out, cap, limit);
	}
	ldns_pkt_free(r);
done:
	ldns_pkt_free(qp);
	return n;
}

/* --- the answer cache ---------------------------------------------------------
 * Most queries are the same names again and again. Each worker thread
 * keeps the responses it built, keyed by the question in wire form (lower
 * case), type, class and whether the query had EDNS, and stamped with the
 * zone's generation: any change to the zone invalidates every entry. Only
 * plain queries take this path (one question, uncompressed, at most an
 * option-less OPT record); a hit copies the response and puts the query's
 * id, RD bit and question bytes (their case) into it, with no ldns and no
 * lock. Everything else, and every miss, goes through ldns. Responses over
 * 512 bytes, truncated ones and forwarded ones are not kept.
 *
 * The table has 4,096 sets of 8 entries (32,768 in all): with fewer ways
 * names that share a set keep evicting each other (2 ways lost 3% of the
 * queries of 6,000 names that way). A set's hashes fill one cache line,
 * scanned first; an entry's key and response live in one buffer of its
 * own, allocated on first use and reused by whatever replaces it, so an
 * idle cache costs only its index (1 MiB). A miss replaces an empty or
 * stale entry, else one in turn. */

#define CACHE_SETS 4096 /* power of two */
#define CACHE_WAYS 8
#define KEY_MAX (DNS_NAME_MAX + 8)

struct dns_cache_ent {
	uint64_t gen;    /* zone generation it was built at */
	uint8_t *buf;    /* key, then response */
	uint16_t keylen, len, cap;
};

struct dns_cache_set {
	uint64_t hash[CACHE_WAYS]; /* of each entry's key; 0: empty */
	struct dns_cache_ent e[CACHE_WAYS];
};

struct dns_cache {
	struct dns_cache_set *sets; /* CACHE_SETS */
	unsigned next;              /* the way a full set gives up next */
	uint64_t hits, misses;
};

struct dns_cache *dns_cache_new(void)
{
	struct dns_cache *c = calloc(1, sizeof(*c));
	if (c != NULL && (c->sets = aligned_alloc(64,
	    CACHE_SETS * sizeof(*c->sets))) == NULL) {
		free(c);
		return NULL;
	}
	if (c != NULL)
		memset(c->sets, 0, CACHE_SETS * sizeof(*c->sets));
	return c;
}

void dns_cache_free(struct dns_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < CACHE_SETS; i++)
		for (int w = 0; w < CACHE_WAYS; w++)
			free(c->sets[i].e[w].buf);
	free(c->sets);
	free(c);
}

/* The cache key of a plain query into key (its length) and its hash, and
 * the length of its question (name + type + class); 0 when the query is
 * not plain. Every byte read is bounds-checked against qlen. */
static size_t plain_key(const uint8_t *q, size_t qlen, uint8_t *key,
    size_t *qsec, uint64_t *hash)
{
	if (qlen < 17 || (q[2] & 0xf8) != 0 || q[4] != 0 || q[5] != 1 ||
	    (q[6] | q[7] | q[8] | q[9]) || q[10] != 0 || q[11] > 1)
		return 0; /* QR or an opcode, qd != 1, an, ns, ar > 1 */
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	size_t i = 12, k = 0;
	while (i < qlen && q[i] != 0) {
		uint8_t l = q[i];
		if (l > 63 || i + 1 + l >= qlen || k + 1 + l > DNS_NAME_MAX)
			return 0; /* pointers and long labels: the slow path */
		key[k++] = l;
		h = (h ^ l) * 1099511628211ull;
		for (uint8_t j = 0; j < l; j++) {
			uint8_t ch = q[i + 1 + j];
			ch = (uint8_t)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
			key[k++] = ch;
			h = (h ^ ch) * 1099511628211ull;
		}
		i += 1u + l;
	}
	if (i + 5 > qlen)
		return 0;
	key[k++] = 0;
	memcpy(key + k, q + i + 1, 4); /* type, class */
	k += 4;
	i += 5;
	*qsec = i - 12;
	bool edns = q[11] == 1;
	if (edns) {
		/* root name, type OPT, class = size, ttl, rdlen 0 */
		if (qlen != i + 11 || q[i] != 0 || q[i + 1] != 0 ||
		    q[i + 2] != 41 || q[i + 9] != 0 || q[i + 10] != 0)
			return 0;
	} else if (qlen != i) {
		return 0;
	}
	key[k++] = edns;
	for (size_t j = k - 6; j < k; j++)
		h = (h ^ key[j]) * 1099511628211ull;
	*hash = h | 1; /* never 0, the empty mark */
	return k;
}

/* Keep key -> resp in a way of set: an empty or stale one, else the next
 * in turn. Its buffer is reused when big enough. */
static void cache_put(struct dns_cache *c, struct dns_cache_set *set,
    uint64_t hash, uint64_t gen, const uint8_t *key, size_t klen,
    const uint8_t *resp, size_t n)
{
	int w = 0;
	while (w < CACHE_WAYS && set->hash[w] != 0 && set->e[w].gen == gen)
		w++;
	if (w == CACHE_WAYS)
		w = (int)(c->next++ % CACHE_WAYS);
	struct dns_cache_ent *e = &set->e[w];
	set->hash[w] = 0;
	if (e->buf == NULL || e->cap < klen + n) {
		uint8_t *b = realloc(e->buf, klen + n);
		if (b == NULL)
			return; /* the way stays empty, its old buffer kept */
		e->buf = b;
		e->cap = (uint16_t)(klen + n);
	}
	memcpy(e->buf, key, klen);
	memcpy(e->buf + klen, resp, n);
	e->keylen = (uint16_t)klen;
	e->len = (uint16_t)n;
	e->gen = gen;
	set->hash[w] = hash;
}

size_t dns_answer(struct dns_zone *z, const struct dns_upstream *up,
    struct dns_cache *c, const uint8_t *q, size_t qlen, uint8_t *out,
    size_t cap, bool tcp)
{
	uint8_t key[KEY_MAX];
	uint64_t hash = 0;
	size_t qsec = 0;
	size_t klen = c != NULL ? plain_key(q, qlen, key, &qsec, &hash) : 0;
	struct dns_cache_set *set = NULL;
	if (klen > 0) {
		uint64_t now = __atomic_load_n(&z->gen, __ATOMIC_ACQUIRE);
		set = &c->sets[(hash >> 17) % CACHE_SETS];
		for (int w = 0; w < CACHE_WAYS; w++) {
			const struct dns_cache_ent *e = &set->e[w];
			if (set->hash[w] != hash || e->gen != now ||
			    e->keylen != klen || e->len > cap ||
			    memcmp(e->buf, key, klen) != 0)
				continue;
			memcpy(out, e->buf + klen, e->len);
			out[0] = q[0];
			out[1] = q[1];
			out[2] = (uint8_t)((out[2] & ~1u) | (q[2] & 1u));
			memcpy(out + 12, q + 12, qsec);
			c->hits++;
			return e->len;
		}
		c->misses++;
	}
	bool cacheable = false;
	uint64_t gen = 0;
	size_t n = answer(z, up, q, qlen, out, cap, tcp, &cacheable, &gen);
	if (set != NULL && cacheable && n <= 512)
		cache_put(c, set, hash, gen, key, klen, out, n);
	return n;
}

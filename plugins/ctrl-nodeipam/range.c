/* plugins/ctrl-nodeipam/range.c — the cluster CIDR as a bitmap of
 * node-sized blocks: parse, map a CIDR to its block and back, find a free
 * one. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipam.h"

#define MAX_BLOCK_BITS 24 /* at most 2^24 blocks: a 2 MiB bitmap */

bool ipam_parse_cidr(const char *s, uint32_t *base, int *prefix, char *why,
    size_t whylen)
{
	char buf[64];
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(buf)) {
		snprintf(why, whylen, "`%s` is not an IPv4 CIDR", s);
		return false;
	}
	memcpy(buf, s, n + 1);
	char *slash = strchr(buf, '/');
	if (slash == NULL) {
		snprintf(why, whylen, "`%s` is not a CIDR (no /prefix)", s);
		return false;
	}
	*slash = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1) {
		snprintf(why, whylen,
		    strchr(buf, ':') ? "`%s`: IPv6 is not supported yet" :
				       "`%s` is not an IPv4 CIDR",
		    s);
		return false;
	}
	char *end;
	long p = strtol(slash + 1, &end, 10);
	if (*end || end == slash + 1 || p < 0 || p > 32) {
		snprintf(why, whylen, "`%s`: the prefix must be 0..32", s);
		return false;
	}
	uint32_t mask = p == 0 ? 0 : 0xffffffffu << (32 - p);
	*base = ntohl(a.s_addr) & mask;
	*prefix = (int)p;
	return true;
}

int ipam_range_init(struct ipam_range *r, const char *cidr, int mask, char *why,
    size_t whylen)
{
	char bad[200];
	memset(r, 0, sizeof(*r));
	if (!ipam_parse_cidr(cidr, &r->base, &r->prefix, bad, sizeof(bad))) {
		snprintf(why, whylen, "cluster_cidr %s", bad);
		return KB_EINVAL;
	}
	if (mask < r->prefix || mask > 32) {
		snprintf(why, whylen,
		    "node_cidr_mask_size %d must be between the cluster CIDR's "
		    "prefix %d and 32",
		    mask, r->prefix);
		return KB_EINVAL;
	}
	if (mask - r->prefix > MAX_BLOCK_BITS) {
		snprintf(why, whylen,
		    "node_cidr_mask_size %d cuts %s into 2^%d blocks; at most "
		    "2^%d",
		    mask, cidr, mask - r->prefix, MAX_BLOCK_BITS);
		return KB_EINVAL;
	}
	r->mask = mask;
	r->nblocks = 1u << (mask - r->prefix);
	r->used = calloc((r->nblocks + 7) / 8, 1);
	if (r->used == NULL) {
		snprintf(why, whylen, "out of memory");
		return KB_ENOMEM;
	}
	return 0;
}

void ipam_range_free(struct ipam_range *r)
{
	free(r->used);
	memset(r, 0, sizeof(*r));
}

bool ipam_block_of(const struct ipam_range *r, const char *cidr, size_t len,
    uint32_t *idx)
{
	char buf[64], why[128];
	uint32_t base;
	int prefix;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, cidr, len);
	buf[len] = '\0';
	if (!ipam_parse_cidr(buf, &base, &prefix, why, sizeof(why)) ||
	    prefix != r->mask)
		return false;
	uint32_t cmask = r->prefix == 0 ? 0 : 0xffffffffu << (32 - r->prefix);
	if ((base & cmask) != r->base)
		return false;
	*idx = r->mask == 32 ? base - r->base :
			       (base - r->base) >> (32 - r->mask);
	return *idx < r->nblocks;
}

void ipam_block_cidr(const struct ipam_range *r, uint32_t idx, char *buf,
    size_t len)
{
	uint32_t a = r->base + (r->mask == 32 ? idx : idx << (32 - r->mask));
	snprintf(buf, len, "%u.%u.%u.%u/%d", a >> 24, (a >> 16) & 255,
	    (a >> 8) & 255, a & 255, r->mask);
}

bool ipam_is_set(const struct ipam_range *r, uint32_t idx)
{
	return idx < r->nblocks && (r->used[idx / 8] >> (idx % 8)) & 1;
}

void ipam_set(struct ipam_range *r, uint32_t idx, bool used)
{
	if (idx >= r->nblocks || ipam_is_set(r, idx) == used)
		return;
	if (used) {
		r->used[idx / 8] |= (uint8_t)(1u << (idx % 8));
		r->nused++;
	} else {
		r->used[idx / 8] &= (uint8_t) ~(1u << (idx % 8));
		r->nused--;
	}
}

/* The lowest free block at or after the hint, wrapping: Kubernetes' range
 * allocator also goes round, so a block just freed is not handed out
 * again at once. */
bool ipam_take_free(struct ipam_range *r, uint32_t *idx)
{
	if (r->nused >= r->nblocks)
		return false;
	for (uint32_t k = 0; k < r->nblocks; k++) {
		uint32_t i = (r->hint + k) % r->nblocks;
		if (!ipam_is_set(r, i)) {
			ipam_set(r, i, true);
			*idx = i;
			r->hint = (i + 1) % r->nblocks;
			return true;
		}
	}
	return false;
}

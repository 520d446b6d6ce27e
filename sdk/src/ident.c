/* sdk/src/ident.c — sender identities stamped by the core. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static atomic_ullong ident_serials;

struct kb_ident *kb_ident_new(const char *endpoint, const char *user,
    const char *uid, const char *const *groups, size_t ngroups)
{
	struct kb_ident *id = calloc(1, sizeof(*id));
	if (id == NULL)
		return NULL;
	atomic_init(&id->refs, 1);
	id->serial = atomic_fetch_add(&ident_serials, 1) + 1;
	id->endpoint = dup_or_empty(endpoint);
	id->user = dup_or_empty(user);
	id->uid = dup_or_empty(uid);
	id->groups = calloc(ngroups + 1, sizeof(char *));
	bool ok = id->endpoint && id->user && id->uid && id->groups;
	for (size_t i = 0; ok && i < ngroups; i++) {
		id->groups[i] = strdup(groups[i]);
		ok = id->groups[i] != NULL;
		id->ngroups = i + 1;
	}
	if (!ok) {
		kb_ident_unref(id);
		return NULL;
	}
	return id;
}

struct kb_ident *kb_ident_ref(struct kb_ident *id)
{
	if (id)
		atomic_fetch_add_explicit(&id->refs, 1, memory_order_relaxed);
	return id;
}

void kb_ident_unref(struct kb_ident *id)
{
	if (id == NULL ||
	    atomic_fetch_sub_explicit(&id->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; id->groups && i < id->ngroups; i++)
		free(id->groups[i]);
	free(id->groups);
	free(id->endpoint);
	free(id->user);
	free(id->uid);
	free(id);
}

bool kb_ident_in_group(const struct kb_ident *id, const char *group)
{
	for (size_t i = 0; id && i < id->ngroups; i++)
		if (strcmp(id->groups[i], group) == 0)
			return true;
	return false;
}

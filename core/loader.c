/* core/loader.c — finding plugin files and checking their descriptors.
 *
 * The checks follow PostgreSQL's magic block: compare field by field and
 * say exactly which one differs ("ABI 2.0, host 1.0: major version
 * differs"), so the one-line error is enough to fix the problem.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

int kb_loader_find(const char *plugin_path, const char *use, char **file,
    char *err, size_t errlen)
{
	if (strchr(use, '/')) {
		if (access(use, R_OK) != 0) {
			snprintf(err, errlen, "file not found");
			return KB_ENOENT;
		}
		*file = strdup(use);
		return *file ? 0 : KB_ENOMEM;
	}
	char *dirs = strdup(plugin_path ? plugin_path : "");
	if (dirs == NULL)
		return KB_ENOMEM;
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/kubus-%s.so", d, use);
		if (access(path, R_OK) == 0) {
			free(dirs);
			*file = strdup(path);
			return *file ? 0 : KB_ENOMEM;
		}
	}
	free(dirs);
	snprintf(err, errlen, "no kubus-%s.so on the plugin path %s", use,
	    plugin_path && *plugin_path ? plugin_path : "(empty)");
	return KB_ENOENT;
}

int kb_loader_open(const char *file, void **dlp, const struct kb_plugin **descp,
    char *err, size_t errlen)
{
	void *dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		snprintf(err, errlen, "dlopen failed: %s", dlerror());
		return KB_ENOENT;
	}
	kb_plugin_describe_fn fn;
	*(void **)&fn = dlsym(dl, KB_PLUGIN_SYMBOL);
	if (fn == NULL) {
		snprintf(err, errlen, "no descriptor: the symbol %s is not exported",
		    KB_PLUGIN_SYMBOL);
		goto out_close;
	}
	const struct kb_plugin *d = fn();
	if (d == NULL) {
		snprintf(err, errlen, "%s() returned NULL", KB_PLUGIN_SYMBOL);
		goto out_close;
	}
	if (d->hdr.magic != KB_PLUGIN_MAGIC) {
		snprintf(err, errlen,
		    "bad magic 0x%08x, expected 0x%08x: not a Kubus plugin",
		    d->hdr.magic, KB_PLUGIN_MAGIC);
		goto out_close;
	}
	if (d->hdr.abi_major != KB_ABI_MAJOR) {
		snprintf(err, errlen, "ABI %u.%u, host %u.%u: major version differs",
		    d->hdr.abi_major, d->hdr.abi_minor, KB_ABI_MAJOR, KB_ABI_MINOR);
		goto out_abi;
	}
	if (d->hdr.abi_minor > KB_ABI_MINOR) {
		snprintf(err, errlen,
		    "ABI %u.%u, host %u.%u: the plugin needs a newer host",
		    d->hdr.abi_major, d->hdr.abi_minor, KB_ABI_MAJOR, KB_ABI_MINOR);
		goto out_abi;
	}
	if (d->hdr.size < offsetof(struct kb_plugin, ops) + sizeof(void *)) {
		snprintf(err, errlen, "descriptor size %u is smaller than ABI 1.0's %zu",
		    d->hdr.size, offsetof(struct kb_plugin, ops) + sizeof(void *));
		goto out_abi;
	}
	if (d->name == NULL || d->name[0] == '\0') {
		snprintf(err, errlen, "the descriptor has no name");
		goto out_close;
	}
	if (kb_kind_name(d->kind) == NULL) {
		snprintf(err, errlen, "unknown kind %d", d->kind);
		goto out_close;
	}
	if (kb_kind_is_extension(d->kind) ? d->ops == NULL : d->init == NULL) {
		snprintf(err, errlen, "the descriptor has no %s",
		    kb_kind_is_extension(d->kind) ? "ops table" : "init");
		goto out_close;
	}
	*dlp = dl;
	*descp = d;
	return 0;
out_abi:
	dlclose(dl);
	return KB_EABI;
out_close:
	dlclose(dl);
	return KB_EINVAL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int kb_loader_list(const char *plugin_path, FILE *out)
{
	char *dirs = strdup(plugin_path ? plugin_path : "");
	char *save = NULL;
	int found = 0;
	fprintf(out, "%-24s %-14s %-8s %-5s %s\n", "NAME", "KIND", "VERSION",
	    "ABI", "FILE");
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		DIR *dir = opendir(d);
		if (dir == NULL)
			continue;
		char **names = NULL;
		size_t n = 0;
		struct dirent *e;
		while ((e = readdir(dir)) != NULL) {
			size_t l = strlen(e->d_name);
			if (strncmp(e->d_name, "kubus-", 6) || l < 4 ||
			    strcmp(e->d_name + l - 3, ".so"))
				continue;
			char **nn = realloc(names, (n + 1) * sizeof(*names));
			if (nn == NULL)
				break;
			names = nn;
			names[n++] = strdup(e->d_name);
		}
		closedir(dir);
		if (n > 1)
			qsort(names, n, sizeof(*names), cmp_str);
		for (size_t i = 0; i < n; i++) {
			char file[4096], err[512];
			void *dl;
			const struct kb_plugin *desc;
			snprintf(file, sizeof(file), "%s/%s", d, names[i]);
			if (kb_loader_open(file, &dl, &desc, err, sizeof(err)) == 0) {
				char abi[16];
				snprintf(abi, sizeof(abi), "%u.%u", desc->hdr.abi_major,
				    desc->hdr.abi_minor);
				fprintf(out, "%-24s %-14s %-8s %-5s %s\n", desc->name,
				    kb_kind_name(desc->kind),
				    desc->version ? desc->version : "-", abi, file);
				dlclose(dl);
			} else {
				fprintf(out, "%-24s %-14s %-8s %-5s %s (%s)\n", "?",
				    "invalid", "-", "-", file, err);
			}
			found++;
			free(names[i]);
		}
		free(names);
	}
	free(dirs);
	return found;
}

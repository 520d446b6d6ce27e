/* image/cli.c — `kubus image import|ls|rm|build|export`: the command line
 * of the store, called from core/main.c. Errors are one line,
 * "kubus image: <what>: <why>", exit status 1; misuse prints the usage,
 * exit status 2. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_cli.h"
#include "img_internal.h"

static const char usage[] =
    "usage: kubus image import FILE|DIR [--as REF] [--data-dir D]\n"
    "       kubus image ls [--data-dir D]\n"
    "       kubus image rm REF... [--data-dir D]\n"
    "       kubus image build REF DIR [--cmd CMD] [--entrypoint CMD] [--env K=V]...\n"
    "                         [--workdir DIR] [--user U] [--out FILE.tar] [--data-dir D]\n"
    "       kubus image export REF FILE.tar [--data-dir D]\n"
    "  The store is the OCI image layout DATA_DIR/images (default data dir\n"
    "  /var/lib/kubus). import takes an OCI layout directory or an oci-archive\n"
    "  tar (gzip'd or not). build makes a one-layer image of DIR's tree, owned\n"
    "  by root; CMD is a JSON array ('[\"sh\",\"-c\",\"x\"]') or words split at\n"
    "  spaces. With --out, build writes an oci-archive, and also keeps the\n"
    "  image in the store only when --data-dir is given.\n";

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "kubus image: %s: %s\n", what, why);
	return 1;
}

static int misuse(const char *msg)
{
	if (msg)
		fprintf(stderr, "kubus image: %s\n", msg);
	fputs(usage, stderr);
	return 2;
}

static int open_store(const char *data_dir, kb_image_store **st)
{
	char dir[4200], err[512];
	snprintf(dir, sizeof(dir), "%s/images", data_dir);
	if (kb_image_open(dir, st, err, sizeof(err)) != 0)
		return fail(dir, err);
	return 0;
}

/* "sh -c x" or ["sh","-c","x"] into a NULL-terminated vector. */
static char **parse_cmd(const char *s)
{
	size_t cap = strlen(s) / 2 + 2, n = 0;
	char **v = calloc(cap, sizeof(char *));
	if (v == NULL)
		return NULL;
	if (*s == '[') {
		json_error_t je;
		json_t *a = json_loads(s, 0, &je), *e;
		size_t i;
		if (!json_is_array(a)) {
			json_decref(a);
			free(v);
			return NULL;
		}
		char **nv =
		    realloc(v, (json_array_size(a) + 1) * sizeof(char *));
		if (nv == NULL) {
			json_decref(a);
			free(v);
			return NULL;
		}
		v = nv;
		json_array_foreach(a, i, e) {
			if (!json_is_string(e)) {
				v[n] = NULL;
				for (size_t k = 0; k < n; k++)
					free(v[k]);
				free(v);
				json_decref(a);
				return NULL;
			}
			v[n++] = strdup(json_string_value(e));
		}
		v[n] = NULL;
		json_decref(a);
		return v;
	}
	char *copy = strdup(s), *save = NULL;
	for (char *w = copy ? strtok_r(copy, " \t", &save) : NULL; w;
	     w = strtok_r(NULL, " \t", &save))
		v[n++] = strdup(w);
	free(copy);
	v[n] = NULL;
	return v;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void human(int64_t n, char *out, size_t len)
{
	static const char *unit[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)n;
	int u = 0;
	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%lldB", (long long)n);
	else
		snprintf(out, len, "%.3g%s", v, unit[u]);
}

static int cmd_import(const char *data_dir, char **pos, size_t npos,
    const char *as)
{
	if (npos != 1)
		return misuse("import takes one FILE or DIR");
	kb_image_store *st;
	int rc = open_store(data_dir, &st);
	if (rc)
		return rc;
	struct kb_image_info *v = NULL;
	size_t n = 0;
	char err[1024], what[4200];
	rc = kb_image_import_refs(st, pos[0], as, &v, &n, err, sizeof(err));
	kb_image_close(st);
	if (rc) {
		snprintf(what, sizeof(what), "import %s", pos[0]);
		return fail(what, err);
	}
	for (size_t i = 0; i < n; i++)
		printf("%s %s\n", v[i].ref, v[i].digest);
	free(v);
	return 0;
}

static int cmd_ls(const char *data_dir, size_t npos)
{
	if (npos != 0)
		return misuse("ls takes no arguments");
	kb_image_store *st;
	int rc = open_store(data_dir, &st);
	if (rc)
		return rc;
	struct kb_image_info *v = NULL;
	size_t n = 0, w = 3;
	char err[1024];
	rc = kb_image_list(st, &v, &n, err, sizeof(err));
	kb_image_close(st);
	if (rc)
		return fail("ls", err);
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i].ref) > w)
			w = strlen(v[i].ref);
	printf("%-*s  %-12s  %8s  %s\n", (int)w, "REF", "DIGEST", "SIZE",
	    "CREATED");
	for (size_t i = 0; i < n; i++) {
		char size[32];
		human(v[i].size, size, sizeof(size));
		const char *hex = strchr(v[i].digest, ':');
		printf("%-*s  %-12.12s  %8s  %s\n", (int)w, v[i].ref,
		    hex ? hex + 1 : v[i].digest, size,
		    v[i].created[0] ? v[i].created : "-");
	}
	free(v);
	return 0;
}

static int cmd_rm(const char *data_dir, char **pos, size_t npos)
{
	if (npos == 0)
		return misuse("rm takes one or more REFs");
	kb_image_store *st;
	int rc = open_store(data_dir, &st);
	if (rc)
		return rc;
	int status = 0;
	for (size_t i = 0; i < npos; i++) {
		char err[1024], what[600];
		if (kb_image_remove(st, pos[i], err, sizeof(err)) != 0) {
			snprintf(what, sizeof(what), "rm %s", pos[i]);
			status = fail(what, err);
			continue;
		}
		char norm[512];
		kb_image_normalize(pos[i], norm, sizeof(norm));
		printf("removed %s\n", norm);
	}
	kb_image_close(st);
	return status;
}

struct build_opts {
	const char *cmd, *entrypoint, *workdir, *user, *out;
	char **env;
	size_t nenv;
};

static int cmd_build(const char *data_dir, bool explicit_dir, char **pos,
    size_t npos, struct build_opts *o)
{
	if (npos != 2)
		return misuse("build takes REF and DIR");
	const char *ref = pos[0], *dir = pos[1];
	char what[600], err[1024], tmpl[4200];
	snprintf(what, sizeof(what), "build %s", ref);
	struct kb_image_config cfg = { .working_dir = (char *)o->workdir,
		.user = (char *)o->user };
	int rc = 0;
	if (o->cmd && (cfg.cmd = parse_cmd(o->cmd)) == NULL)
		return fail(what,
		    "--cmd: expected a JSON array of strings or words");
	if (o->entrypoint &&
	    (cfg.entrypoint = parse_cmd(o->entrypoint)) == NULL) {
		strv_free(cfg.cmd);
		return fail(what,
		    "--entrypoint: expected a JSON array of strings or words");
	}
	if (o->nenv) {
		cfg.env = o->env;
		o->env[o->nenv] = NULL;
	}
	char *tmpstore = NULL;
	kb_image_store *st = NULL;
	if (o->out && !explicit_dir) {
		/* Only the file: build in a scratch store beside it. */
		char *copy = strdup(o->out);
		snprintf(tmpl, sizeof(tmpl), "%s/.kubus-image-build-XXXXXX",
		    copy ? dirname(copy) : ".");
		free(copy);
		if (mkdtemp(tmpl) == NULL) {
			rc = fail(tmpl, strerror(errno));
			goto out;
		}
		tmpstore = tmpl;
		if (kb_image_open(tmpstore, &st, err, sizeof(err)) != 0) {
			rc = fail(what, err);
			goto out;
		}
	} else if ((rc = open_store(data_dir, &st)) != 0) {
		goto out;
	}
	if (kb_image_build(st, ref, dir, &cfg, err, sizeof(err)) != 0) {
		rc = fail(what, err);
		goto out;
	}
	if (o->out && kb_image_export(st, ref, o->out, err, sizeof(err)) != 0) {
		rc = fail(what, err);
		goto out;
	}
	struct kb_image_info *v = NULL;
	size_t n = 0;
	char norm[512];
	kb_image_normalize(ref, norm, sizeof(norm));
	if (kb_image_list(st, &v, &n, err, sizeof(err)) == 0)
		for (size_t i = 0; i < n; i++)
			if (!strcmp(v[i].ref, norm))
				printf("%s %s\n", v[i].ref, v[i].digest);
	free(v);
out:
	kb_image_close(st);
	if (tmpstore)
		img_rmrf(tmpstore);
	strv_free(cfg.cmd);
	strv_free(cfg.entrypoint);
	return rc;
}

static int cmd_export(const char *data_dir, char **pos, size_t npos)
{
	if (npos != 2)
		return misuse("export takes REF and FILE");
	kb_image_store *st;
	int rc = open_store(data_dir, &st);
	if (rc)
		return rc;
	char err[1024], what[600];
	if (kb_image_export(st, pos[0], pos[1], err, sizeof(err)) != 0) {
		snprintf(what, sizeof(what), "export %s", pos[0]);
		rc = fail(what, err);
	}
	kb_image_close(st);
	return rc;
}

int kb_image_cli(int argc, char **argv)
{
	if (argc < 2)
		return misuse(NULL);
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") ||
	    !strcmp(sub, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	const char *data_dir = "/var/lib/kubus", *as = NULL;
	bool explicit_dir = false;
	struct build_opts o = { 0 };
	char **pos = calloc((size_t)argc + 1, sizeof(char *));
	o.env = calloc((size_t)argc + 1, sizeof(char *));
	size_t npos = 0;
	int rc = 0;
	if (pos == NULL || o.env == NULL) {
		rc = fail(sub, "out of memory");
		goto out;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			goto out;
		} else if (!strcmp(a, "--data-dir")) {
			slot = &data_dir;
			explicit_dir = true;
		} else if (!strcmp(a, "--as")) {
			slot = &as;
		} else if (!strcmp(a, "--cmd")) {
			slot = &o.cmd;
		} else if (!strcmp(a, "--entrypoint")) {
			slot = &o.entrypoint;
		} else if (!strcmp(a, "--workdir")) {
			slot = &o.workdir;
		} else if (!strcmp(a, "--user")) {
			slot = &o.user;
		} else if (!strcmp(a, "--out")) {
			slot = &o.out;
		} else if (!strcmp(a, "--env")) {
			if (v == NULL || !strchr(v, '=')) {
				rc = misuse("--env needs K=V");
				goto out;
			}
			o.env[o.nenv++] = (char *)v;
			i++;
			continue;
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "kubus image: unknown option %s\n", a);
			rc = misuse(NULL);
			goto out;
		} else {
			pos[npos++] = (char *)a;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "kubus image: %s needs a value\n", a);
			rc = misuse(NULL);
			goto out;
		}
		*slot = v;
		i++;
	}
	if ((as && strcmp(sub, "import")) ||
	    ((o.cmd || o.entrypoint || o.workdir || o.user || o.out ||
		 o.nenv) &&
		strcmp(sub, "build"))) {
		rc = misuse("option not valid for this subcommand");
		goto out;
	}
	if (!strcmp(sub, "import"))
		rc = cmd_import(data_dir, pos, npos, as);
	else if (!strcmp(sub, "ls") || !strcmp(sub, "list"))
		rc = cmd_ls(data_dir, npos);
	else if (!strcmp(sub, "rm") || !strcmp(sub, "remove"))
		rc = cmd_rm(data_dir, pos, npos);
	else if (!strcmp(sub, "build"))
		rc = cmd_build(data_dir, explicit_dir, pos, npos, &o);
	else if (!strcmp(sub, "export"))
		rc = cmd_export(data_dir, pos, npos);
	else {
		fprintf(stderr, "kubus image: unknown subcommand `%s`\n", sub);
		rc = misuse(NULL);
	}
out:
	free(pos);
	free(o.env);
	return rc;
}

/* admit_pod_vol.c — a PodSpec's volumes (ValidateVolumes): one source
 * each, their own rules (paths, file modes, projections), unique DNS
 * label names; the volumes without errors are what mounts may name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define FILE_MODE_MSG                                                          \
	"must be a number between 0 and 0777 (octal), both "                   \
	"inclusive"

/* --- paths inside volumes ---------------------------------------------------- */

/* validatePathNoBacksteps */
static bool backsteps(const char *s)
{
	const char *p = s;

	while (p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && !strncmp(p, "..", 2))
			return true;
		p = slash ? slash + 1 : NULL;
	}
	return false;
}

/* validateLocalDescendingPath, and ValidateLocalNonReservedPath when
 * nonreserved. */
void adm_local_path(const char *s, const char *path, bool nonreserved,
    struct api_error *e)
{
	if (*s == '/')
		adm_invalid_str(e, path, s, "must be a relative path");
	if (backsteps(s))
		adm_invalid_str(e, path, s, "must not contain '..'");
	if (nonreserved && !strncmp(s, "..", 2) && strncmp(s, "../", 3))
		adm_invalid_str(e, path, s, "must not start with '..'");
}

static void file_mode(const json_t *o, const char *key, const char *base,
    struct api_error *e)
{
	char p[ADM_PATH];
	long long m;

	if (adm_int(o, key, &m) && (m < 0 || m > 0777))
		adm_invalid_int(e, adm_path(p, "%s.%s", base, key), m,
		    FILE_MODE_MSG);
}

static void key_to_paths(const json_t *items, const char *path,
    struct api_error *e)
{
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *kp;

	json_array_foreach(items, i, kp) {
		const char *fp = adm_str(kp, "path") ?: "";
		adm_path(base, "%s[%zu]", path, i);
		if (adm_is_empty(adm_str(kp, "key")))
			adm_required(e, adm_path(p, "%s.key", base), "");
		adm_path(p, "%s.path", base);
		if (!*fp)
			adm_required(e, p, "");
		adm_local_path(fp, p, true, e);
		file_mode(kp, "mode", base, e);
	}
}

/* --- volume sources ---------------------------------------------------------- */

static void downward_items(const json_t *items, const char *path,
    struct api_error *e)
{
	static const char *const exprs[] = { "metadata.annotations",
		"metadata.labels", "metadata.name", "metadata.namespace",
		"metadata.uid", NULL };
	char p[ADM_PATH];
	size_t i;
	json_t *f, *ref;

	json_array_foreach(items, i, f) {
		const char *fp = adm_str(f, "path") ?: "";
		adm_path(p, "%s.path", path);
		if (!*fp)
			adm_required(e, p, "");
		adm_local_path(fp, p, true, e);
		if ((ref = adm_obj(f, "fieldRef"))) {
			adm_field_ref(ref, adm_path(p, "%s.fieldRef", path),
			    exprs, e);
			if (adm_obj(f, "resourceFieldRef"))
				adm_invalid_str(e, path, "resource",
				    "fieldRef "
				    "and resourceFieldRef can not be specified "
				    "simultaneously");
		} else if ((ref = adm_obj(f, "resourceFieldRef"))) {
			adm_resource_field_ref(ref,
			    adm_path(p, "%s.resourceFieldRef", path), true, e);
		} else {
			adm_required(e, path,
			    "one of fieldRef and resourceFieldRef is required");
		}
		file_mode(f, "mode", path, e);
	}
}

static void host_path(const json_t *hp, const char *path, struct api_error *e)
{
	static const char *const types[] = { "", "BlockDevice", "CharDevice",
		"Directory", "DirectoryOrCreate", "File", "FileOrCreate",
		"Socket", NULL };
	char p[ADM_PATH];
	const char *s = adm_str(hp, "path") ?: "";
	const char *t = adm_str(hp, "type");

	if (!*s) {
		adm_required(e, adm_path(p, "%s.path", path), "");
		return;
	}
	if (backsteps(s))
		adm_invalid_str(e, adm_path(p, "%s.path", path), s,
		    "must not contain '..'");
	if (t && !adm_in_list(t, types))
		adm_unsupported(e, adm_path(p, "%s.type", path), t, types);
}

void adm_required_field(const json_t *o, const char *key, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];

	if (adm_is_empty(adm_str(o, key)))
		adm_required(e, adm_path(p, "%s.%s", path, key), "");
}

static void secret_like(const json_t *s, const char *name_key, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];

	adm_required_field(s, name_key, path, e);
	file_mode(s, "defaultMode", path, e);
	key_to_paths(adm_arr(s, "items"), adm_path(p, "%s.items", path), e);
}

static void empty_dir(const json_t *ed, const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	struct adm_qty q;
	json_t *sl = json_object_get(ed, "sizeLimit");

	if (sl && !adm_qty_json(sl, &q) && adm_qty_sign(&q) < 0)
		adm_forbidden(e, adm_path(p, "%s.sizeLimit", path),
		    "SizeLimit field must be a valid resource quantity");
}

static void nfs(const json_t *n, const char *path, struct api_error *e)
{
	char p[ADM_PATH];
	const char *s = adm_str(n, "path") ?: "";

	adm_required_field(n, "server", path, e);
	adm_required_field(n, "path", path, e);
	if (*s != '/')
		adm_invalid_str(e, adm_path(p, "%s.path", path), s,
		    "must be an absolute path");
}

/* A projection source's items share one set of paths. */
static void projection_paths(const json_t *items, const char *path,
    const char *conflict, json_t *paths, struct api_error *e)
{
	size_t i;
	json_t *kp;

	json_array_foreach(items, i, kp) {
		const char *fp = adm_str(kp, "path");
		if (adm_is_empty(fp))
			continue;
		if (json_object_get(paths, fp))
			adm_invalid_str(e, path, conflict ? conflict : fp,
			    "conflicting duplicate paths");
		json_object_set_new(paths, fp, json_true());
	}
}

static void sa_token(const json_t *t, const char *src, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	long long exp = 0;
	const char *fp = adm_str(t, "path");

	adm_int(t, "expirationSeconds", &exp);
	adm_path(p, "%s.expirationSeconds", src);
	if (exp < 600)
		adm_invalid_int(e, p, exp,
		    "may not specify a duration less than 10 minutes");
	if (exp > (1ll << 32))
		adm_invalid_int(e, p, exp,
		    "may not specify a duration larger than 2^32 seconds");
	adm_path(p, "%s.path", path);
	if (adm_is_empty(fp))
		adm_required(e, p, "");
	else
		adm_local_path(fp, p, true, e);
}

static void projection(const json_t *src, const char *path, json_t *paths,
    const char *vpath, struct api_error *e)
{
	char p[ADM_PATH];
	int n = 0;
	json_t *x;

	if ((x = adm_obj(src, "secret")) && ++n) {
		adm_required_field(x, "name", adm_path(p, "%s.secret", path),
		    e);
		key_to_paths(adm_arr(x, "items"),
		    adm_path(p, "%s.secret.items", path), e);
		projection_paths(adm_arr(x, "items"), vpath,
		    adm_str(x, "name") ?: "", paths, e);
	}
	if ((x = adm_obj(src, "configMap")) && ++n) {
		adm_required_field(x, "name", adm_path(p, "%s.configMap", path),
		    e);
		key_to_paths(adm_arr(x, "items"),
		    adm_path(p, "%s.configMap.items", path), e);
		projection_paths(adm_arr(x, "items"), vpath,
		    adm_str(x, "name") ?: "", paths, e);
	}
	if ((x = adm_obj(src, "downwardAPI")) && ++n) {
		downward_items(adm_arr(x, "items"),
		    adm_path(p, "%s.downwardAPI", path), e);
		projection_paths(adm_arr(x, "items"), vpath, NULL, paths, e);
	}
	if ((x = adm_obj(src, "serviceAccountToken")) && ++n)
		sa_token(x, adm_path(p, "%s.serviceAccountToken", path), vpath,
		    e);
	if ((x = adm_obj(src, "clusterTrustBundle")))
		n++;
	if (n > 1)
		adm_forbidden(e, path,
		    "may not specify more than 1 volume type per source");
}

static void projected(const json_t *pv, const char *path, struct api_error *e)
{
	json_t *paths = json_object();
	char p[ADM_PATH];
	size_t i;
	json_t *src;

	file_mode(pv, "defaultMode", path, e);
	json_array_foreach(adm_arr(pv, "sources"), i, src)
		projection(src, adm_path(p, "%s.sources[%zu]", path, i), paths,
		    path, e);
	json_decref(paths);
}

static void image_volume(const json_t *iv, const char *path, bool is_pod,
    struct api_error *e)
{
	static const char *const policies[] = { "Always", "IfNotPresent",
		"Never", NULL };
	char p[ADM_PATH];
	const char *pp = adm_str(iv, "pullPolicy");

	if (is_pod)
		adm_required_field(iv, "reference", path, e);
	adm_path(p, "%s.pullPolicy", path);
	if (adm_is_empty(pp))
		adm_required(e, p, "");
	else if (!adm_in_list(pp, policies))
		adm_unsupported(e, p, pp, policies);
}

/* One source's own rules; the deprecated in-tree ones are checked for
 * their required fields only. */
static void source_rules(const char *kind, const json_t *s, const char *path,
    struct adm_podctx *c, struct api_error *e)
{
	if (!strcmp(kind, "emptyDir"))
		empty_dir(s, path, e);
	else if (!strcmp(kind, "hostPath"))
		host_path(s, path, e);
	else if (!strcmp(kind, "secret"))
		secret_like(s, "secretName", path, e);
	else if (!strcmp(kind, "configMap"))
		secret_like(s, "name", path, e);
	else if (!strcmp(kind, "persistentVolumeClaim"))
		adm_required_field(s, "claimName", path, e);
	else if (!strcmp(kind, "nfs"))
		nfs(s, path, e);
	else if (!strcmp(kind, "downwardAPI")) {
		file_mode(s, "defaultMode", path, e);
		downward_items(adm_arr(s, "items"), path, e);
	} else if (!strcmp(kind, "projected"))
		projected(s, path, e);
	else if (!strcmp(kind, "csi"))
		adm_required_field(s, "driver", path, e);
	else if (!strcmp(kind, "gitRepo"))
		adm_required_field(s, "repository", path, e);
	else if (!strcmp(kind, "image"))
		image_volume(s, path, c->is_pod, e);
}

/* validateVolumeSource's order, and the names it uses in paths (two of
 * them misspelt, as in Kubernetes). */
static const struct {
	const char *key, *name;
} sources[] = {
	{ "emptyDir", "emptyDir" },
	{ "hostPath", "hostPath" },
	{ "gitRepo", "gitRepo" },
	{ "gcePersistentDisk", "gcePersistentDisk" },
	{ "awsElasticBlockStore", "awsElasticBlockStore" },
	{ "secret", "secret" },
	{ "nfs", "nfs" },
	{ "iscsi", "iscsi" },
	{ "glusterfs", "glusterfs" },
	{ "flocker", "flocker" },
	{ "persistentVolumeClaim", "persistentVolumeClaim" },
	{ "rbd", "rbd" },
	{ "cinder", "cinder" },
	{ "cephfs", "cephFS" },
	{ "quobyte", "quobyte" },
	{ "downwardAPI", "downwarAPI" },
	{ "fc", "fc" },
	{ "flexVolume", "flexVolume" },
	{ "configMap", "configMap" },
	{ "azureFile", "azureFile" },
	{ "vsphereVolume", "vsphereVolume" },
	{ "photonPersistentDisk", "photonPersistentDisk" },
	{ "portworxVolume", "portworxVolume" },
	{ "azureDisk", "azureDisk" },
	{ "storageos", "storageos" },
	{ "projected", "projected" },
	{ "scaleIO", "scaleIO" },
	{ "csi", "csi" },
	{ "ephemeral", "ephemeral" },
	{ "image", "image" },
};

static void volume_source(const json_t *v, const char *path,
    struct adm_podctx *c, struct api_error *e)
{
	char p[ADM_PATH];
	int n = 0;

	for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
		json_t *s = adm_obj(v, sources[i].key);
		if (!s)
			continue;
		if (n++) {
			adm_forbidden(e,
			    adm_path(p, "%s.%s", path, sources[i].name),
			    "may not specify more than 1 volume type");
			continue;
		}
		source_rules(sources[i].key, s,
		    adm_path(p, "%s.%s", path, sources[i].key), c, e);
	}
	if (!n)
		adm_required(e, path, "must specify a volume type");
}

void adm_volumes_validate(const json_t *vols, struct adm_podctx *c,
    const char *path, struct api_error *e)
{
	char base[ADM_PATH], p[ADM_PATH];
	size_t i;
	json_t *v;

	json_array_foreach(vols, i, v) {
		struct api_error one = { 0 };
		const char *name = adm_str(v, "name") ?: "";
		adm_path(base, "%s[%zu]", path, i);
		volume_source(v, base, c, &one);
		adm_path(p, "%s.name", base);
		if (!*name) {
			adm_required(&one, p, "");
		} else {
			struct adm_msgs m = { 0 };
			adm_dns1123_label(name, &m);
			adm_invalid_msgs(&one, p, name, &m);
		}
		if (json_object_get(c->volumes, name))
			adm_duplicate_str(&one, p, name);
		/* only a volume without errors can be mounted */
		if (!json_array_size(one.causes)) {
			json_object_set(c->volumes, name, v);
			continue;
		}
		size_t j;
		json_t *cause;
		json_array_foreach(one.causes, j, cause)
			api_err_cause(e, adm_str(cause, "reason"),
			    adm_str(cause, "field"), "%s",
			    adm_str(cause, "message"));
		json_decref(one.causes);
	}
}

/*
 * main.c - the quipu command: global options, the command table with each
 * command's --help text, and dispatch.  The commands live in cmd_*.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wire.h"

#define DATA_HELP                                                            \
	"  -d, --data DIR      data directory (default: $QUIPU_DATA, else\n"     \
	"                      $XDG_DATA_HOME/quipu, else ~/.local/share/quipu)\n" \
	"  -h, --help          print this help\n"

static const qp_cmd cmds[] = {
	{ "init", qp_cmd_init,
	  "usage: quipu [-d DIR] init [--role field|hub] [--listen HOST:PORT]\n"
	  "Create a node's data directory (0700), its ed25519 key (0600),\n"
	  "node.json and the store directory, then print the public key.\n"
	  "Works offline; refuses when DIR already holds a key.\n\n"
	  "  --role ROLE         field (default) or hub\n"
	  "  --listen HOST:PORT  address a hub listens on for sync (a hub's\n"
	  "                      default: 0.0.0.0:7420)\n" DATA_HELP,
	  "create a node (key, config, store); prints its public key" },
	{ "id", qp_cmd_id,
	  "usage: quipu [-d DIR] id\n"
	  "Print the node's public key (64 hex digits).  Reads the key file;\n"
	  "quipud need not run.\n\n" DATA_HELP,
	  "print the node's public key" },
	{ "status", qp_cmd_status,
	  "usage: quipu [-d DIR] status [--json] [--digest]\n"
	  "Show quipud's status: key, role, records per kind, deltas, feeds,\n"
	  "conflicts, quarantine, map size, uptime, clients, commits and\n"
	  "writes, and one line per sync peer (state, deltas the hub has not\n"
	  "acked, last ack, last success, last error).  Its cost does not grow\n"
	  "with the number of records.\n\n"
	  "  --json              print the daemon's reply as one JSON object\n"
	  "  --digest            add the record-state digest (BLAKE2b of every\n"
	  "                      record: equal on nodes holding the same data).\n"
	  "                      It reads every record, and quipud answers\n"
	  "                      nothing else meanwhile: seconds on a large hub\n"
	  DATA_HELP,
	  "show daemon and store status" },
	{ "add", qp_cmd_add,
	  "usage: quipu [-d DIR] add KIND [--file F]\n"
	  "Add records of KIND read from F (or stdin): one JSON object, or\n"
	  "JSON lines.  All records are accepted or refused together; the new\n"
	  "ids are printed one per line in input order.  A refusal names the\n"
	  "input line of the failing record.  For more than 10000 records use\n"
	  "`quipu import`.\n\n"
	  "  -f, --file F        read from F instead of stdin\n" DATA_HELP,
	  "add records (JSON object or JSON lines); prints the new ids" },
	{ "update", qp_cmd_update,
	  "usage: quipu [-d DIR] update ID [--file F]\n"
	  "Change fields of record ID: reads a JSON object of the changed\n"
	  "fields from F (or stdin); a null value removes an optional field.\n"
	  "Prints the id.\n\n"
	  "  -f, --file F        read from F instead of stdin\n" DATA_HELP,
	  "change fields of a record" },
	{ "void", qp_cmd_void,
	  "usage: quipu [-d DIR] void ID --reason TEXT\n"
	  "Withdraw record ID (it stays in the log, marked void).  Prints the\n"
	  "id.\n\n"
	  "  -r, --reason TEXT   why the record is withdrawn (required)\n"
	  DATA_HELP,
	  "withdraw a record" },
	{ "get", qp_cmd_get,
	  "usage: quipu [-d DIR] get ID [--meta]\n"
	  "Print record ID as one JSON object.\n\n"
	  "  -m, --meta          print {\"record\": ..., \"meta\": ...} with the\n"
	  "                      record's created/updated times, version, author\n"
	  DATA_HELP,
	  "print a record" },
	{ "list", qp_cmd_list,
	  "usage: quipu [-d DIR] list KIND [--format jsonl|csv] [--org ORG] "
	  "[--voided]\n"
	  "Print every record of KIND, as JSON lines (default) or CSV (columns\n"
	  "id,kind,org then the kind's fields in schema order).\n\n"
	  "  -F, --format FMT    jsonl (default) or csv\n"
	  "  -O, --org ORG       only records of organisation ORG\n"
	  "  --voided            include voided records\n" DATA_HELP,
	  "print all records of a kind (JSON lines or CSV)" },
	{ "import", qp_cmd_import,
	  "usage: quipu [-d DIR] import FILE [--kind KIND] [--batch N] "
	  "[--from-line L]\n"
	  "Import records from FILE (- for stdin): JSON lines, or CSV.  FILE\n"
	  "is read as CSV when its name ends in .csv (any case), or when\n"
	  "--kind is given and its first character other than blanks (after\n"
	  "a UTF-8 byte-order mark) is not '{'; otherwise as JSON.  A CSV\n"
	  "header row names the fields; a CSV needs --kind or a kind column.\n"
	  "\n"
	  "The whole file is read first and checked for syntax (JSON, or CSV\n"
	  "quoting, columns and cell values such as numbers), and each\n"
	  "record's kind; a file that fails this check writes nothing.  Then\n"
	  "records are sent in batches of up to N consecutive records of one\n"
	  "kind (a change of kind starts a new batch).  quipud validates each\n"
	  "batch against the schema and commits or refuses it as a whole:\n"
	  "only a batch is all-or-nothing.  A refusal names FILE:LINE and\n"
	  "says how many records of earlier batches were committed (they\n"
	  "stay) and the line to resume from once the record is fixed.\n\n"
	  "  -k, --kind KIND     kind of every record\n"
	  "  -b, --batch N       records per batch (default 500, at most 10000)\n"
	  "  -f, --from-line L   send only the records from line L on (the\n"
	  "                      whole file is still checked): resume an\n"
	  "                      import that stopped at a refused batch\n"
	  DATA_HELP,
	  "import JSON lines or CSV in batches" },
	{ "export", qp_cmd_export,
	  "usage: quipu [-d DIR] export KIND [--format jsonl|csv|geojson] "
	  "[--org ORG] [-o FILE]\n"
	  "Write every record of KIND as JSON lines (default), CSV, or a\n"
	  "GeoJSON FeatureCollection (plot and session: one Feature per record\n"
	  "with a geometry; the other fields and the id are its properties;\n"
	  "the records without one are left out and counted).\n\n"
	  "  -F, --format FMT    jsonl (default), csv or geojson\n"
	  "  -O, --org ORG       only records of organisation ORG\n"
	  "  --voided            include voided records\n"
	  "  -o, --output FILE   write to FILE (atomically) instead of stdout\n"
	  DATA_HELP,
	  "write records as JSON lines, CSV or GeoJSON" },
	{ "verify", qp_cmd_verify,
	  "usage: quipu [-d DIR] verify\n"
	  "Ask quipud to re-check every signature and hash link and rebuild\n"
	  "the state from the log; prints a summary.  Exit status 1 when the\n"
	  "log or the state does not verify.\n\n" DATA_HELP,
	  "re-check signatures and hash chains; rebuild and compare state" },
	{ "backup", qp_cmd_backup,
	  "usage: quipu [-d DIR] backup DEST\n"
	  "Copy the data directory to the new directory DEST while quipud\n"
	  "goes on serving (it need not run): the key, node.json, the\n"
	  "reference layers and a compacted snapshot of the store, as of the\n"
	  "newest commit when the backup began.  The copy is built in\n"
	  "DEST.part, synced, and renamed to DEST once complete; interrupted,\n"
	  "it removes what it made.  DEST holds the node's secret key: keep it\n"
	  "as safe as the node.  To restore, stop quipud and put DEST in\n"
	  "DIR's place; quipud sees that the store is a restored copy (see\n"
	  "`quipu status`).\n\n" DATA_HELP,
	  "copy the data directory while quipud runs" },
	{ "restore", qp_cmd_restore,
	  "usage: quipu [-d DIR] restore BACKUP\n"
	  "Put the backup BACKUP (made by `quipu backup`, or by quipud's\n"
	  "scheduled backups) in place of the data directory, with quipud\n"
	  "stopped.  The backup is copied beside DIR and checked as `quipu\n"
	  "verify` does (every signature and hash link, the state rebuilt from\n"
	  "the log) before anything is changed; what DIR held is kept in\n"
	  "DIR.replaced-STAMP, never deleted.  A DIR holding another node's key\n"
	  "is refused.  BACKUP itself is left as it is.  Started on the\n"
	  "restored data, a node that joined a hub syncs with it before it\n"
	  "writes (see `quipu status`).\n\n" DATA_HELP,
	  "put a backup in place of the data directory (quipud stopped)" },
	{ "enroll", qp_cmd_enroll,
	  "usage: quipu [-d DIR] enroll --pubkey KEY --org ORG [--org ORG...] "
	  "--name NAME\n"
	  "                    [--role technician|relay|hub] [--expires DATE] "
	  "[--address HOST:PORT]\n"
	  "On a hub: certify the device whose public key is KEY (its `quipu\n"
	  "id`) for the organisations ORG, and print its join token, one line\n"
	  "to give to the device's `quipu join`.\n\n"
	  "  -k, --pubkey KEY    the device's public key (64 hex digits)\n"
	  "  -O, --org ORG       organisation id (UUID) whose records the\n"
	  "                      device may read and write; repeatable\n"
	  "  -n, --name NAME     display name (1 to 64 bytes)\n"
	  "  -r, --role ROLE     technician (default), relay or hub\n"
	  "  -e, --expires DATE  YYYY-MM-DD (end of that day, UTC), an ISO\n"
	  "                      date-time, or never (default: in one year)\n"
	  "  -a, --address HOST:PORT\n"
	  "                      hub address the device dials (default: the\n"
	  "                      hub's listen address in node.json)\n"
	  DATA_HELP,
	  "certify a device for a hub; prints its join token" },
	{ "join", qp_cmd_join,
	  "usage: quipu [-d DIR] join TOKEN\n"
	  "Join the hub that issued TOKEN (from its `quipu enroll`; - reads\n"
	  "it from stdin).  Blanks and line breaks in a pasted token are\n"
	  "ignored.  quipud checks and stores the token, then syncs with the\n"
	  "hub whenever it can reach it.\n\n" DATA_HELP,
	  "join a hub with a join token" },
	{ "revoke", qp_cmd_revoke,
	  "usage: quipu [-d DIR] revoke KEY [--after-seq N]\n"
	  "On a hub: revoke the device key KEY.  Its deltas with a seq above N\n"
	  "are no longer accepted (quarantined where held); those up to N\n"
	  "stay valid.  The revocation reaches every device at its next sync.\n"
	  "\n"
	  "  -s, --after-seq N   last seq that stays valid (0: none; default:\n"
	  "                      the highest seq the hub holds from KEY)\n"
	  DATA_HELP,
	  "revoke a device key" },
	{ "peers", qp_cmd_peers,
	  "usage: quipu [-d DIR] peers [--json]\n"
	  "List the nodes this node syncs with: key (first 16 hex digits),\n"
	  "name, role, last contact, lag (deltas the peer lacks from us),\n"
	  "pending (deltas not yet acked) and last error.\n\n"
	  "  -j, --json          print the peers as one JSON array\n"
	  DATA_HELP,
	  "list sync peers" },
	{ "sync", qp_cmd_sync,
	  "usage: quipu [-d DIR] sync [--wait [--timeout S]]\n"
	  "Sync with the hub now.  With --wait, return only when the hub has\n"
	  "acked every local delta (exit 0), or report why not (exit 1).\n\n"
	  "  -w, --wait          wait until the hub acked everything\n"
	  "  -t, --timeout S     with --wait: give up waiting after S seconds\n"
	  "                      (default 60)\n"
	  DATA_HELP,
	  "sync with the hub now (--wait: until it acked everything)" },
	{ "conflicts", qp_cmd_conflicts,
	  "usage: quipu [-d DIR] conflicts [--json]\n"
	  "List fields that concurrent edits set to different values: record\n"
	  "id, kind, field, then each competing value with its author (first\n"
	  "16 hex digits) and HLC.\n\n"
	  "  -j, --json          print the conflicts as one JSON array\n"
	  DATA_HELP,
	  "list conflicting concurrent edits" },
	{ "quarantine", qp_cmd_quarantine,
	  "usage: quipu [-d DIR] quarantine [--json]\n"
	  "List quarantined ops (signed and held, but not applied): author\n"
	  "(first 16 hex digits), org, seq, op index and the reason.\n\n"
	  "  -j, --json          print the entries as one JSON array\n"
	  DATA_HELP,
	  "list quarantined ops and why" },
	{ "forks", qp_cmd_forks,
	  "usage: quipu [-d DIR] forks [--json]\n"
	  "List the deltas kept as forks: signed by a known author but\n"
	  "claiming a seq the node already holds with other bytes (fork), or\n"
	  "not chaining to what it holds (unlinked: past a fork).  Neither is\n"
	  "applied; the author's feed stops at the fork until it is reviewed.\n"
	  "Shows author (first 16 hex digits), org, seq, what, and the first\n"
	  "ops the delta carries.\n\n"
	  "  -j, --json          print the entries as one JSON array (with\n"
	  "                      the delta's hash and the held one's)\n"
	  DATA_HELP,
	  "list deltas kept as forks, for review" },
	{ "settle", qp_cmd_settle,
	  "usage: quipu [-d DIR] settle\n"
	  "On a hub restored from a backup: open local writes again.  quipud\n"
	  "holds them while the data directory is a restored copy, since the\n"
	  "hub may have written more after the backup than the copy holds;\n"
	  "the devices bring those deltas back when they sync.  Run it once\n"
	  "the devices that received the hub's own records have synced.  (A\n"
	  "node that joined a hub settles by itself at its next sync.)\n\n"
	  DATA_HELP,
	  "open writes on a restored hub after its devices synced" },
	{ "bundle", qp_cmd_bundle,
	  "usage: quipu [-d DIR] bundle export FILE [--for KEY | --since "
	  "VECTOR.json]\n"
	  "       quipu [-d DIR] bundle import FILE\n"
	  "Carry deltas without a network (USB stick, mail).  export writes\n"
	  "the deltas this node holds to FILE; import reads a bundle and\n"
	  "ingests its deltas as a sync would, printing each distinct\n"
	  "refusal reason once on stderr with its count (exit 0 when no\n"
	  "delta was refused; 1 when any was, or when the bundle itself is\n"
	  "damaged and nothing was imported).\n\n"
	  "  -f, --for KEY       only what device KEY may see (its orgs)\n"
	  "  -s, --since FILE    only deltas after the version vector in FILE:\n"
	  "                      [{\"author\": KEY, \"org\": ORG, \"seq\": N}, ...]\n"
	  DATA_HELP,
	  "write or read an offline bundle of deltas" },
	{ "check", qp_cmd_check,
	  "usage: quipu [-d DIR] check duplicates [--json]\n"
	  "       quipu [-d DIR] check plots [--json] [--min-overlap PCT]\n"
	  "                                  [--layer NAME]...\n"
	  "       quipu [-d DIR] check lots [--json]\n"
	  "Review what tablets that never saw each other wrote, once they have\n"
	  "synced (run it at the hub).  Exit 0 whether or not anything is found.\n\n"
	  "duplicates  producers with the same DNI in an organisation,\n"
	  "            organisations with the same RUC, one person's attendance\n"
	  "            at one session recorded twice\n"
	  "plots       plots of different producers that overlap by more than\n"
	  "            PCT% of the smaller one (default 5), duplicate plots (the\n"
	  "            same land recorded twice), and plots that intersect a\n"
	  "            loaded forest-loss layer (`quipu layer load`); each finding\n"
	  "            names both records and the overlap area in hectares\n"
	  "lots        mass balance: lots consumed by more kg than they hold, and\n"
	  "            merge/split/transform events whose outputs exceed their\n"
	  "            inputs times the product's yield (plus tolerance)\n\n"
	  "  -j, --json          print the findings as one JSON array\n"
	  "  --min-overlap PCT   plots: overlap threshold, percent of the\n"
	  "                      smaller plot (default 5)\n"
	  "  --layer NAME        plots: check only against layer NAME (default:\n"
	  "                      every loaded layer)\n"
	  DATA_HELP,
	  "review duplicates, overlapping plots, lot mass balance" },
	{ "trace", qp_cmd_trace,
	  "usage: quipu [-d DIR] trace LOT [--down] [--format text|json|geojson|csv]\n"
	  "Follow a lot's custody chain through its signed lot events.\n"
	  "Upstream (default): every lot that contributed to LOT, back to the\n"
	  "lots received from producers, with each producer's and plot's kg\n"
	  "and share.  Downstream (--down): every lot and shipment that holds\n"
	  "product of LOT, or of a producer when LOT is a producer id.  LOT is a\n"
	  "lot id or code.  Each record comes with its author key and HLC (the\n"
	  "signed op that made it; `quipu verify` proves the log).\n\n"
	  "  --down              trace downstream instead of upstream\n"
	  "  --format FMT        text (default), json, geojson (the plots), csv\n"
	  DATA_HELP,
	  "trace a lot up to producers and plots, or down to shipments" },
	{ "dds", qp_cmd_dds,
	  "usage: quipu [-d DIR] dds LOT [-o FILE] [--country CC] [--force]\n"
	  "                            [--max-bytes N]\n"
	  "Write the due-diligence GeoJSON (EU TRACES) for LOT: every plot\n"
	  "upstream of it, once, as a Feature with ProducerName,\n"
	  "ProducerCountry, ProductionPlace and Area (ha), coordinates with\n"
	  "at least 6 decimals.  Files are split to stay below 25 MB\n"
	  "(FILE-1.geojson, FILE-2.geojson, ...).  The plots are checked first\n"
	  "(geometry, overlaps with other producers' plots, forest-loss\n"
	  "layers); blocking findings are listed and nothing is written (exit\n"
	  "1) unless --force.\n\n"
	  "  -o, --output FILE   output file (default dds-CODE.geojson)\n"
	  "  --country CC        ProducerCountry (ISO 3166-1 alpha-2, default PE)\n"
	  "  --force             write even with blocking findings\n"
	  "  --max-bytes N       split size (default 25000000)\n"
	  DATA_HELP,
	  "write a lot's EUDR due-diligence GeoJSON (TRACES)" },
	{ "report", qp_cmd_report,
	  "usage: quipu [-d DIR] report attendance [--by KEYS] [--format "
	  "text|csv|json]\n"
	  "Attendance against commitments: sessions planned and held,\n"
	  "attendance rate, services committed and attended, hours, women's\n"
	  "share.  The same person recorded at one session on two devices is\n"
	  "counted once.\n\n"
	  "  --by KEYS           group by org, service, provider, sex, month or\n"
	  "                      several, comma-separated (default org)\n"
	  "  --format FMT        text (default), csv or json\n"
	  DATA_HELP,
	  "attendance report by org, service, provider, sex, month" },
	{ "layer", qp_cmd_layer,
	  "usage: quipu [-d DIR] layer load NAME FILE\n"
	  "       quipu [-d DIR] layer list\n"
	  "       quipu [-d DIR] layer remove NAME\n"
	  "Reference layers for `quipu check plots`, such as post-2020-12-31\n"
	  "forest loss: a GeoJSON FeatureCollection of Polygons and\n"
	  "MultiPolygons, checked and stored in DIR/layers/NAME.geojson.  Layers\n"
	  "belong to this node; they are not synced.\n\n"
	  DATA_HELP,
	  "load reference layers (forest loss) for plot checks" },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

const qp_cmd *qp_cli_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static void usage(FILE *out)
{
	size_t i;

	fputs("usage: quipu [-d DIR | --data DIR] COMMAND [ARGS]\n"
	      "quipu talks to quipud, the offline-first record store.\n\n"
	      "commands:\n",
	      out);
	for (i = 0; i < NCMDS; i++)
		fprintf(out, "  %-10s %s\n", cmds[i].name, cmds[i].brief);
	fputs("\noptions:\n" DATA_HELP
	      "  -V, --version       print the version\n\n"
	      "environment: QUIPU_DATA (data directory), QUIPU_TIMEOUT (whole "
	      "seconds to\nwait for quipud, 0 to 86400, default 600; 0 waits "
	      "forever).\n\n"
	      "`quipu COMMAND --help` describes a command.  Exit status: 0 "
	      "success,\n1 error, 2 usage error, 3 cannot reach quipud.\n",
	      out);
}

/* QUIPU_TIMEOUT: whole seconds, 0 to 86400 (0 waits forever); unset or
 * empty gives the default.  Returns 0 with *ms set, or -1 with the error
 * printed: a value that is not understood is refused rather than
 * silently replaced by the default. */
static int timeout_ms(int *ms)
{
	const char *s = getenv("QUIPU_TIMEOUT");
	char *end;
	long v;

	*ms = QP_CLI_TIMEOUT_MS;
	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v > 86400) {
		qp_cli_err("QUIPU_TIMEOUT wants whole seconds from 0 to 86400 "
			   "(0 waits forever), not \"%s\"", s);
		return -1;
	}
	*ms = (int)v * 1000;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		QP_CLI_COMMON_OPTS,
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	qp_cli c;
	const qp_cmd *cmd;
	int o, status;

	memset(&c, 0, sizeof(c));
	opterr = 0;
	/* '+': stop at the command name; the rest belongs to the command. */
	while ((o = getopt_long(argc, argv, "+:hd:V", opts, NULL)) != -1) {
		switch (o) {
		case 'h':
			usage(stdout);
			return QP_EXIT_OK;
		case 'V':
			printf("quipu %s\n", QP_VERSION_STRING);
			return QP_EXIT_OK;
		case 'd':
			c.opt_dir = optarg;
			break;
		case ':':
			qp_cli_err("option %s needs a value (see quipu --help)",
				   argv[optind - 1]);
			return QP_EXIT_USAGE;
		default:
			qp_cli_err("unknown option %s (see quipu --help)",
				   argv[optind - 1]);
			return QP_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return QP_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		cmd = optind + 1 < argc ? qp_cli_cmd(argv[optind + 1]) : NULL;
		if (cmd != NULL)
			fputs(cmd->usage, stdout);
		else
			usage(stdout);
		return QP_EXIT_OK;
	}
	cmd = qp_cli_cmd(argv[optind]);
	if (cmd == NULL) {
		qp_cli_err("unknown command \"%s\" (see quipu --help)",
			   argv[optind]);
		return QP_EXIT_USAGE;
	}
	if (timeout_ms(&c.timeout_ms) != 0)
		return QP_EXIT_USAGE;
	status = cmd->run(&c, argc - optind, argv + optind);
	qp_api_close(c.api);
	if (c.have_paths)
		qp_node_free(&c.node);
	if (fflush(stdout) != 0 && status == QP_EXIT_OK) {
		qp_cli_err("writing output: %m");
		status = QP_EXIT_FAIL;
	}
	return status;
}

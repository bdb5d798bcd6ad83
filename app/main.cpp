// The `specattn` command line: generate, tokenize, info, bench. Library errors (specattn::error) end here as one line
// on stderr and exit code 1; usage errors exit with CLI11's code.
#include "common.h"

#include "core/check.h"

#include <cstdio>
#include <new>

int main(int argc, char ** argv) {
    CLI::App app{"specattn: long-context LLM decoding with lossless self-speculative decoding"};
    app.require_subcommand(1);
    int exit_code = 0;
    specattn::add_generate_command(app, exit_code);
    specattn::add_tokenize_command(app, exit_code);
    specattn::add_info_command(app, exit_code);
    specattn::add_bench_command(app, exit_code);
    bool known = argc < 2 || argv[1][0] == '-';
    for (const CLI::App * sub : app.get_subcommands([](const CLI::App *) { return true; })) {
        known = known || sub->get_name() == argv[1];
    }
    if (!known) {
        std::fprintf(stderr, "specattn: error: unknown command '%s' (commands: generate, tokenize, info, bench)\n",
                     argv[1]);
        return 2;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        if (e.get_exit_code() == 0) {
            return app.exit(e); // --help
        }
        std::fprintf(stderr, "specattn: error: %s (see --help)\n", e.what());
        return e.get_exit_code();
    } catch (const specattn::error & e) {
        std::fprintf(stderr, "specattn: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc &) {
        std::fprintf(stderr, "specattn: error: out of memory\n");
        return 1;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "specattn: error: %s\n", e.what());
        return 1;
    }
    return exit_code;
}

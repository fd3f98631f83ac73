rockspec_format = "3.0"
package = "nasflat"
version = "scm-1"
source = {
   url = "git+file://.",
}
description = {
   summary = "Few-shot hardware latency prediction for neural architecture search (NASFLAT) in C and Lua",
   detailed = [[
nasflat predicts the latency of neural-network architectures on a hardware device from a few
measurements on that device: a graph network pre-trained on source devices is transferred with
5-20 samples. C11 core over OpenBLAS, Lua 5.4 API, and a `nasflat` command-line tool.
]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4, < 5.5",
   "lua-cjson",
}
external_dependencies = {
   OPENBLAS = {
      header = "cblas.h",
      library = "openblas",
   },
}
build = {
   type = "builtin",
   modules = {
      ["nasflat.core"] = {
         sources = {
            "csrc/lua_core.c", "csrc/lua_data.c", "csrc/lua_engine.c", "csrc/lua_metrics.c", "csrc/lua_mlp.c",
            "csrc/lua_nn.c",
            "csrc/lua_rng.c", "csrc/lua_search.c", "csrc/lua_space.c", "csrc/lua_stats.c",
            "csrc/lua_taskgen.c", "csrc/lua_tensor.c", "csrc/lua_util.c", "csrc/lua_vae.c", "csrc/nf_blas.c",
            "csrc/nf_csv.c", "csrc/nf_data.c", "csrc/nf_enc.c", "csrc/nf_enccache.c", "csrc/nf_engine.c",
            "csrc/nf_err.c", "csrc/nf_fbnet.c", "csrc/nf_frame.c", "csrc/nf_metrics.c", "csrc/nf_mlp.c",
            "csrc/nf_model.c",
            "csrc/nf_modelfile.c", "csrc/nf_nb201.c", "csrc/nf_nn.c", "csrc/nf_optim.c", "csrc/nf_rng.c",
            "csrc/nf_search.c", "csrc/nf_space.c", "csrc/nf_stats.c", "csrc/nf_taskgen.c", "csrc/nf_tensor.c",
            "csrc/nf_train.c", "csrc/nf_util.c", "csrc/nf_vae.c", "csrc/nf_zoo.c",
         },
         incdirs = { "csrc", "$(OPENBLAS_INCDIR)" },
         libdirs = { "$(OPENBLAS_LIBDIR)" },
         libraries = { "openblas", "m" },
         defines = { "_POSIX_C_SOURCE=200809L" },
      },
      ["nasflat"] = "lua/nasflat/init.lua",
      ["nasflat.cli"] = "lua/nasflat/cli.lua",
      ["nasflat.cli_measure"] = "lua/nasflat/cli_measure.lua",
      ["nasflat.cli_search"] = "lua/nasflat/cli_search.lua",
      ["nasflat.cli_study"] = "lua/nasflat/cli_study.lua",
      ["nasflat.cli_sweep"] = "lua/nasflat/cli_sweep.lua",
      ["nasflat.cli_tasks"] = "lua/nasflat/cli_tasks.lua",
      ["nasflat.data"] = "lua/nasflat/data.lua",
      ["nasflat.encodings"] = "lua/nasflat/encodings.lua",
      ["nasflat.engine"] = "lua/nasflat/engine.lua",
      ["nasflat.experiment"] = "lua/nasflat/experiment.lua",
      ["nasflat.features"] = "lua/nasflat/features.lua",
      ["nasflat.json"] = "lua/nasflat/json.lua",
      ["nasflat.measure"] = "lua/nasflat/measure.lua",
      ["nasflat.metrics"] = "lua/nasflat/metrics.lua",
      ["nasflat.model"] = "lua/nasflat/model.lua",
      ["nasflat.model_gnn"] = "lua/nasflat/model_gnn.lua",
      ["nasflat.model_help"] = "lua/nasflat/model_help.lua",
      ["nasflat.model_hybrid"] = "lua/nasflat/model_hybrid.lua",
      ["nasflat.model_multipredict"] = "lua/nasflat/model_multipredict.lua",
      ["nasflat.model_ridge"] = "lua/nasflat/model_ridge.lua",
      ["nasflat.predictor"] = "lua/nasflat/predictor.lua",
      ["nasflat.pretrain_cache"] = "lua/nasflat/pretrain_cache.lua",
      ["nasflat.report"] = "lua/nasflat/report.lua",
      ["nasflat.results"] = "lua/nasflat/results.lua",
      ["nasflat.ridge"] = "lua/nasflat/ridge.lua",
      ["nasflat.samplers"] = "lua/nasflat/samplers.lua",
      ["nasflat.search"] = "lua/nasflat/search.lua",
      ["nasflat.search_bar"] = "lua/nasflat/search_bar.lua",
      ["nasflat.search_device"] = "lua/nasflat/search_device.lua",
      ["nasflat.source"] = "lua/nasflat/source.lua",
      ["nasflat.source_models"] = "lua/nasflat/source_models.lua",
      ["nasflat.space"] = "lua/nasflat/space.lua",
      ["nasflat.study"] = "lua/nasflat/study.lua",
      ["nasflat.svg"] = "lua/nasflat/svg.lua",
      ["nasflat.sweep"] = "lua/nasflat/sweep.lua",
      ["nasflat.sweep_run"] = "lua/nasflat/sweep_run.lua",
      ["nasflat.sweep_search"] = "lua/nasflat/sweep_search.lua",
      ["nasflat.sweep_study"] = "lua/nasflat/sweep_study.lua",
      ["nasflat.tasks"] = "lua/nasflat/tasks.lua",
      ["nasflat.util"] = "lua/nasflat/util.lua",
      ["nasflat.zoo"] = "lua/nasflat/zoo.lua",
   },
   install = {
      bin = { nasflat = "bin/nasflat" },
   },
}

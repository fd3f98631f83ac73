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
            "csrc/lua_core.c", "csrc/lua_data.c", "csrc/lua_metrics.c", "csrc/lua_nn.c",
            "csrc/lua_rng.c", "csrc/lua_space.c", "csrc/lua_stats.c", "csrc/lua_tensor.c",
            "csrc/lua_util.c", "csrc/lua_vae.c", "csrc/nf_blas.c", "csrc/nf_csv.c",
            "csrc/nf_data.c", "csrc/nf_err.c", "csrc/nf_fbnet.c", "csrc/nf_metrics.c",
            "csrc/nf_model.c", "csrc/nf_modelfile.c", "csrc/nf_nb201.c", "csrc/nf_nn.c",
            "csrc/nf_rng.c", "csrc/nf_space.c", "csrc/nf_stats.c", "csrc/nf_tensor.c",
            "csrc/nf_train.c", "csrc/nf_util.c", "csrc/nf_vae.c", "csrc/nf_zoo.c",
         },
         incdirs = { "csrc", "$(OPENBLAS_INCDIR)" },
         libdirs = { "$(OPENBLAS_LIBDIR)" },
         libraries = { "openblas", "m" },
         defines = { "_POSIX_C_SOURCE=200809L" },
      },
      ["nasflat.cli"] = "lua/nasflat/cli.lua",
      ["nasflat.data"] = "lua/nasflat/data.lua",
      ["nasflat.encodings"] = "lua/nasflat/encodings.lua",
      ["nasflat.experiment"] = "lua/nasflat/experiment.lua",
      ["nasflat"] = "lua/nasflat/init.lua",
      ["nasflat.metrics"] = "lua/nasflat/metrics.lua",
      ["nasflat.predictor"] = "lua/nasflat/predictor.lua",
      ["nasflat.report"] = "lua/nasflat/report.lua",
      ["nasflat.ridge"] = "lua/nasflat/ridge.lua",
      ["nasflat.samplers"] = "lua/nasflat/samplers.lua",
      ["nasflat.space"] = "lua/nasflat/space.lua",
      ["nasflat.study"] = "lua/nasflat/study.lua",
      ["nasflat.tasks"] = "lua/nasflat/tasks.lua",
      ["nasflat.util"] = "lua/nasflat/util.lua",
      ["nasflat.zoo"] = "lua/nasflat/zoo.lua",
   },
   install = {
      bin = { nasflat = "bin/nasflat" },
   },
}

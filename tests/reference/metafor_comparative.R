# Reference values for curation.pool's two-arm and reported-effect pooling (pooling contract,
# version 2), computed with R's metafor.
#
# Regenerate from the repository root with:
#     Rscript tests/reference/metafor_comparative.R
# It writes tests/reference/metafor_comparative.json beside this script. Needs R with the packages
# metafor and jsonlite (Debian: apt-get install r-cran-metafor r-cran-jsonlite).
#
# Every fit uses metafor's defaults except the arguments named here (measure, method, test, level):
#   rma(measure = "OR" | "RR" | "RD", ai, n1i, ci, n2i, ...)      escalc: add = 1/2, to = "only0", drop00 = FALSE
#   rma.mh(measure = ..., ai, n1i, ci, n2i, level = ...)           its own defaults (drop00 = TRUE for Q, no correction)
#   rma.peto(ai, n1i, ci, n2i, level = ...)
#   rma(measure = "MD" | "SMD" | "ROM", m1i, sd1i, n1i, m2i, sd2i, n2i, ...)   vtype = "LS"
#   rma(yi = log(hr), sei = (log(upper) - log(lower)) / (2 * 1.959964), ...)   predict(..., transf = exp)
# Errors and warnings raised by metafor are recorded beside the values.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
outdir <- if (length(script)) dirname(normalizePath(script)) else "tests/reference"

# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------

bcg <- dat.bcg
axf <- dat.axfors2021
yus <- dat.yusuf1985[dat.yusuf1985$table == "6", ]
yus <- yus[!is.na(yus$ai), ]  # one trial of the table has no data

binary_sets <- list(
  # 13 BCG vaccine trials (the contract's public table); subgroups: method of treatment allocation
  bcg = list(ai = bcg$tpos, n1i = bcg$tpos + bcg$tneg, ci = bcg$cpos, n2i = bcg$cpos + bcg$cneg,
             groups = bcg$alloc),
  # 33 hydroxychloroquine trials: many zero cells, double-zero trials, trials of 1 to 3155 patients
  axfors = list(ai = axf$hcq_arm_event, n1i = axf$hcq_arm_total, ci = axf$control_arm_event,
                n2i = axf$control_arm_total, groups = axf$Published),
  # beta blockers, table 6 of Yusuf et al. (1985), its 21 trials with data: zero cells and three
  # double-zero trials
  yusuf6 = list(ai = yus$ai, n1i = yus$n1i, ci = yus$ci, n2i = yus$n2i, groups = NULL),
  # constructed: a double-zero study, a zero cell in one arm, a study with only events
  tiny = list(ai = c(0, 3, 10, 5, 7), n1i = c(20, 25, 10, 40, 30), ci = c(0, 0, 10, 12, 9),
              n2i = c(22, 24, 10, 38, 31), groups = NULL)
)

cur <- dat.curtis1998
continuous_sets <- list(
  # length of stay, 9 trials of stroke care
  normand = with(dat.normand1999, list(m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                                       n2i = n2i, groups = NULL)),
  # 102 studies of plant growth under elevated CO2 (Hedges, Gurevitch & Curtis 1999)
  curtis = list(m1i = cur$m1i, sd1i = cur$sd1i, n1i = cur$n1i, m2i = cur$m2i, sd2i = cur$sd2i,
                n2i = cur$n2i, groups = as.character(cur$fungrp))
)

# hazard ratios with 95% CIs as papers report them (illustrative values, two decimals)
hr_sets <- list(
  hr = list(hr = c(0.72, 0.85, 0.61, 1.05, 0.78, 0.55, 0.92, 0.69),
            lower = c(0.55, 0.70, 0.42, 0.81, 0.60, 0.33, 0.74, 0.50),
            upper = c(0.94, 1.03, 0.89, 1.36, 1.01, 0.92, 1.14, 0.95),
            groups = c("A", "A", "B", "A", "B", "B", "A", "B"))
)

Z975 <- 1.959964
methods <- c("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")

num <- function(x) {
  if (is.null(x)) return(NULL)
  as.numeric(x)
}
vec <- function(x) {
  if (is.null(x)) return(NULL)
  I(as.numeric(x))
}

capture <- function(expr) {
  warns <- character(0)
  val <- withCallingHandlers(
    tryCatch(expr, error = function(e) e),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  if (inherits(val, "error")) {
    return(list(value = NULL, error = conditionMessage(val), warnings = I(warns)))
  }
  list(value = val, error = NULL, warnings = I(warns))
}

subset_data <- function(d, idx) {
  out <- lapply(d[setdiff(names(d), "groups")], function(x) x[idx])
  out$groups <- NULL
  out
}

fit_model <- function(kind, d, measure, method, hk, level) {
  test <- if (hk) "knha" else "z"
  if (kind == "binary") {
    if (method == "MH") return(rma.mh(measure = measure, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i, level = level))
    if (method == "PETO") return(rma.peto(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i, level = level))
    return(rma(measure = measure, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i, method = method,
               test = test, level = level))
  }
  if (kind == "continuous") {
    return(rma(measure = measure, m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i, m2i = d$m2i,
               sd2i = d$sd2i, n2i = d$n2i, method = method, test = test, level = level))
  }
  yi <- log(d$hr)
  sei <- (log(d$upper) - log(d$lower)) / (2 * Z975)
  rma(yi = yi, sei = sei, method = method, test = test, level = level)
}

ratio <- function(measure) measure %in% c("OR", "RR", "ROM", "HR")

core_values <- function(res, measure) {
  out <- list(
    k = res$k,
    est_t = num(res$beta), se_t = num(res$se),
    ci_low_t = num(res$ci.lb), ci_high_t = num(res$ci.ub),
    tau2 = num(res$tau2), i2 = num(res$I2), h2 = num(res$H2),
    q = num(res$QE), q_pval = num(res$QEp),
    yi = vec(res$yi.f), vi = vec(res$vi.f))
  out$q_df <- if (inherits(res, "rma.uni")) res$k - 1 else max(res$k.yi - 1, 0)
  if (inherits(res, "rma.uni")) out$se_tau2 <- num(res$se.tau2)
  w <- capture(weights(res))
  out$weights <- vec(w$value)
  p <- predict(res)
  out$pi_low_t <- num(if (is.null(p$pi.lb)) p$ci.lb else p$pi.lb)
  out$pi_high_t <- num(if (is.null(p$pi.ub)) p$ci.ub else p$pi.ub)
  pt <- if (ratio(measure)) predict(res, transf = exp) else p
  out$estimate <- num(pt$pred); out$ci_low <- num(pt$ci.lb); out$ci_high <- num(pt$ci.ub)
  out$pi_low <- num(if (is.null(pt$pi.lb)) pt$ci.lb else pt$pi.lb)
  out$pi_high <- num(if (is.null(pt$pi.ub)) pt$ci.ub else pt$pi.ub)
  out
}

one_fit <- function(kind, name, d, measure, method, hk, level = 95, subgroups = FALSE, loo = FALSE) {
  entry <- list(dataset = name, kind = kind, measure = measure, method = method, hk = hk, level = level)
  r <- capture(fit_model(kind, d, measure, method, hk, level))
  entry$error <- r$error
  entry$warnings <- r$warnings
  if (is.null(r$value)) return(entry)
  res <- r$value
  v <- capture(core_values(res, measure))
  entry$values_error <- v$error
  entry$values_warnings <- v$warnings
  entry <- c(entry, v$value)
  if (inherits(res, "rma.uni")) {
    ci <- capture(confint(res))
    if (!is.null(ci$value)) {
      rr <- ci$value$random
      entry$tau2_ci_low <- num(rr["tau^2", "ci.lb"]); entry$tau2_ci_high <- num(rr["tau^2", "ci.ub"])
    }
  }
  k <- length(d[[1]])
  if (loo && k >= 2) {
    entry$loo <- lapply(seq_len(k), function(i) {
      ri <- capture(fit_model(kind, subset_data(d, -i), measure, method, hk, level))
      if (is.null(ri$value)) return(list(error = ri$error))
      vi <- capture(core_values(ri$value, measure))
      if (is.null(vi$value)) return(list(error = vi$error))
      keep <- c("est_t", "se_t", "tau2", "i2", "q", "estimate", "ci_low", "ci_high", "pi_low", "pi_high")
      vi$value[keep]
    })
  }
  if (subgroups && !is.null(d$groups)) {
    labs <- unique(d$groups)
    sub <- list(); est <- c(); se <- c()
    for (g in labs) {
      idx <- which(d$groups == g)
      rg <- capture(fit_model(kind, subset_data(d, idx), measure, method, hk, level))
      sg <- list(label = g, error = rg$error)
      if (!is.null(rg$value)) {
        vg <- capture(core_values(rg$value, measure))
        sg <- c(sg, vg$value[c("k", "est_t", "se_t", "tau2", "q", "estimate", "ci_low", "ci_high")])
        est <- c(est, c(rg$value$beta)); se <- c(se, rg$value$se)
      }
      sub[[length(sub) + 1]] <- sg
    }
    entry$subgroups <- sub
    qb <- capture(rma(est, sei = se, method = "EE"))
    if (!is.null(qb$value)) {
      entry$q_between <- num(qb$value$QE)
      entry$df_between <- qb$value$k - 1
      entry$p_between <- num(qb$value$QEp)
    }
  }
  entry
}

fits <- list()
add <- function(entry) fits[[length(fits) + 1]] <<- entry

# every measure x every estimator, with and without Knapp-Hartung, at 95% and 90%
for (name in names(binary_sets)) {
  d <- binary_sets[[name]]
  for (measure in c("OR", "RR", "RD")) {
    for (level in c(95, 90)) {
      for (method in methods) for (hk in c(FALSE, TRUE)) {
        add(one_fit("binary", name, d, measure, method, hk, level))
      }
      add(one_fit("binary", name, d, measure, "MH", FALSE, level))
    }
  }
  for (level in c(95, 90)) add(one_fit("binary", name, d, "OR", "PETO", FALSE, level))
}
for (name in names(continuous_sets)) {
  d <- continuous_sets[[name]]
  for (measure in c("MD", "SMD", "ROM")) {
    for (level in c(95, 90)) {
      for (method in methods) for (hk in c(FALSE, TRUE)) {
        add(one_fit("continuous", name, d, measure, method, hk, level))
      }
    }
  }
}
for (name in names(hr_sets)) {
  d <- hr_sets[[name]]
  for (level in c(95, 90)) {
    for (method in methods) for (hk in c(FALSE, TRUE)) {
      add(one_fit("generic", name, d, "HR", method, hk, level))
    }
  }
}

# subgroups and leave-one-out (refits with the same settings)
add(one_fit("binary", "bcg", binary_sets$bcg, "OR", "REML", FALSE, subgroups = TRUE, loo = TRUE))
add(one_fit("binary", "bcg", binary_sets$bcg, "RD", "DL", TRUE, subgroups = TRUE, loo = TRUE))
add(one_fit("binary", "bcg", binary_sets$bcg, "OR", "MH", FALSE, subgroups = TRUE, loo = TRUE))
add(one_fit("binary", "bcg", binary_sets$bcg, "OR", "PETO", FALSE, subgroups = TRUE, loo = TRUE))
add(one_fit("binary", "axfors", binary_sets$axfors, "RR", "MH", FALSE, subgroups = TRUE))
add(one_fit("continuous", "normand", continuous_sets$normand, "SMD", "REML", FALSE, loo = TRUE))
add(one_fit("continuous", "curtis", continuous_sets$curtis, "ROM", "REML", TRUE, subgroups = TRUE))
add(one_fit("generic", "hr", hr_sets$hr, "HR", "REML", FALSE, subgroups = TRUE, loo = TRUE))

datasets <- c(
  lapply(binary_sets, function(d) list(ai = vec(d$ai), n1i = vec(d$n1i), ci = vec(d$ci), n2i = vec(d$n2i),
                                       groups = if (is.null(d$groups)) NULL else I(as.character(d$groups)))),
  lapply(continuous_sets, function(d) list(m1i = vec(d$m1i), sd1i = vec(d$sd1i), n1i = vec(d$n1i),
                                           m2i = vec(d$m2i), sd2i = vec(d$sd2i), n2i = vec(d$n2i),
                                           groups = if (is.null(d$groups)) NULL else I(d$groups))),
  lapply(hr_sets, function(d) list(hr = vec(d$hr), lower = vec(d$lower), upper = vec(d$upper),
                                   groups = I(d$groups))))

out <- list(
  generated_by = "tests/reference/metafor_comparative.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  datasets = datasets,
  fits = fits)

write_json(out, file.path(outdir, "metafor_comparative.json"), auto_unbox = TRUE, digits = NA,
           null = "null", na = "null", pretty = FALSE)
cat("wrote", length(fits), "fits to", file.path(outdir, "metafor_comparative.json"), "\n")

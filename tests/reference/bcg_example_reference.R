# Reference values for the comparative example form (extraction_forms/example_bcg.xlsx):
# metafor on the dat.bcg trials whose counts pass validation (the planted count slips keep trials 2 and 4
# out of the analyses of counts), and on the risk ratios the rows report whose effect and CI pass (the
# slips in trial 6's RR and trial 8's p-value against its CI keep those two out of the reported-RR
# analysis only: an error excludes a record from the analyses that use a field it involves). Run from the repository root:
#   Rscript tests/reference/bcg_example_reference.R
# It writes tests/reference/bcg_example_reference.json (committed; the tests need no R).
suppressPackageStartupMessages({library(metafor); library(jsonlite)})
dat <- dat.bcg[!(dat.bcg$trial %in% c(2, 4)), ]
fig <- function(res, transf = exp) {
  p <- predict(res, transf = transf)
  list(estimate = p$pred, ci_low = p$ci.lb, ci_high = p$ci.ub,
       pi_low = if (is.null(p$pi.lb)) p$ci.lb else p$pi.lb, pi_high = if (is.null(p$pi.ub)) p$ci.ub else p$pi.ub,
       tau2 = if (is.null(res$tau2)) 0 else res$tau2, i2 = res$I2, q = res$QE, k = res$k)
}
rr <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat)
or <- escalc(measure = "OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat)
out <- list(
  trials = paste0("T", sprintf("%02d", dat$trial)),
  "RR-REML" = fig(rma(yi, vi, data = rr, method = "REML")),
  "RR-DL" = fig(rma(yi, vi, data = rr, method = "DL")),
  "RR-REML-HK" = fig(rma(yi, vi, data = rr, method = "REML", test = "knha")),
  "RR-MH" = fig(rma.mh(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat, measure = "RR")),
  "OR-REML" = fig(rma(yi, vi, data = or, method = "REML")),
  "OR-PETO" = fig(rma.peto(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat)))
# the risk ratios the rows of trials 1-5, 7 and 9-13 report (rounded to 2 decimals, trial 10's upper
# bound typed 0.34)
out[["reported_trials"]] <- paste0("T", sprintf("%02d", c(1:5, 7, 9:13)))
rep <- data.frame(rr = c(0.41, 0.2, 0.26, 0.24, 0.8, 0.2, 0.63, 0.25, 0.71, 1.56, 0.98),
                  lo = c(0.13, 0.09, 0.07, 0.18, 0.52, 0.08, 0.39, 0.15, 0.57, 0.37, 0.58),
                  hi = c(1.26, 0.49, 0.92, 0.31, 1.25, 0.5, 1.0, 0.34, 0.89, 6.53, 1.66))
sei <- (log(rep$hi) - log(rep$lo)) / (2 * 1.959964)
out[["reported-REML"]] <- fig(rma(log(rep$rr), sei = sei, method = "REML"))
sub <- lapply(split(seq_len(nrow(rr)), dat$alloc), function(i) fig(rma(yi, vi, data = rr[i, ], method = "REML")))
out[["RR-REML-by-allocation"]] <- sub
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/reference/bcg_example_reference.json")

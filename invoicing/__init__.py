"""What the business does: eligibility, money, numbering, runs, PDFs, delivery."""

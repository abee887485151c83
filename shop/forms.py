from django import forms

from shop.cart import MAX_QUANTITY


class SearchForm(forms.Form):
    """The catalog's search, sorting and stock filter, all in the query string (no JavaScript)."""

    q = forms.CharField(label="Search products", max_length=100, required=False)
    sort = forms.ChoiceField(
        label="Sort by",
        required=False,
        choices=[
            ("name", "Name: A to Z"),
            ("-name", "Name: Z to A"),
            ("price", "Price: low to high"),
            ("-price", "Price: high to low"),
        ],
    )
    in_stock = forms.BooleanField(label="In stock only", required=False)


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(label="Quantity", min_value=1, max_value=MAX_QUANTITY, initial=1)


class CartLineForm(forms.Form):
    """Change one line's quantity; 0 removes the line."""

    quantity = forms.IntegerField(label="Quantity", min_value=0, max_value=MAX_QUANTITY)
